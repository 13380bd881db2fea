"""The SMS channel through Twilio's Programmable Messaging, with the official `twilio` SDK.

Texts go from a phone number (`from_number`) or, preferably, a Messaging Service (`messaging_service_sid`: Twilio
picks the sender, handles opt-outs and long codes per country). Twilio does not echo a reference of ours in its
status callbacks, so the status callback URL the service gives (`OutgoingSms.status_callback`) is where the
reference goes (a query parameter the webhook reads back).

Errors are sorted for the delivery job: a 4xx other than 429 is Twilio refusing this text for good (invalid number,
landline, the recipient replied STOP: PermanentDeliveryError "<Twilio error code>: <message>", `opted_out` for STOP);
429, 5xx, timeouts and connection failures are transient (DeliveryError, retried with backoff).
"""

from __future__ import annotations

from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from backend.notifications.ports import DeliveryError, OutgoingSms, PermanentDeliveryError
from backend.notifications.webhooks import TWILIO_OPTED_OUT

TWILIO_API = "https://api.twilio.com"
TOO_MANY_REQUESTS = 429
MAX_REASON = 500
_SDK_PREFIX = "Unable to create record: "  # what the SDK puts before Twilio's own message


class _RoutedHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client (requests, connection pool, timeout), sending api.twilio.com requests to `base_url`
    when one is given: the SDK has no host setting, and tests point it at the local fake."""

    def __init__(self, base_url: str | None, timeout: float):
        super().__init__(timeout=timeout)
        self._base_url = (base_url or "").rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self._base_url and url.startswith(TWILIO_API):
            url = self._base_url + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)


class TwilioSmsSender:
    def __init__(self, account_sid: str, auth_token: str, *, from_number: str = "", messaging_service_sid: str = "",
                 base_url: str | None = None, timeout: float = 10.0):
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).")
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a sender: a phone number (TWILIO_FROM_NUMBER) or a Messaging Service SID "
                             "(TWILIO_MESSAGING_SERVICE_SID).")
        if timeout <= 0:
            raise ValueError("The Twilio timeout must be positive.")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._client = Client(account_sid, auth_token, http_client=_RoutedHttpClient(base_url, timeout))

    def send(self, sms: OutgoingSms) -> str:
        """Returns the message's sid ("SM..."), which Twilio's status callbacks carry as MessageSid."""
        try:
            message = self._client.messages.create(to=sms.to, body=sms.body, **self._sender(sms))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _classify(exc) from exc
        except requests.RequestException as exc:  # timeouts, refused or reset connections
            raise DeliveryError(f"Twilio could not be reached: {exc}"[:MAX_REASON]) from exc
        return str(message.sid)

    def _sender(self, sms: OutgoingSms) -> dict[str, str]:
        # A Messaging Service wins when both are set: it is the sender pool Twilio recommends.
        options = ({"messaging_service_sid": self._messaging_service_sid} if self._messaging_service_sid
                   else {"from_": self._from_number})
        if sms.status_callback:
            options["status_callback"] = sms.status_callback
        return options


def _classify(exc: TwilioRestException | TwilioServiceException) -> Exception:
    status = int(exc.status)
    reason = f"{exc.code}: {_message(exc)}"[:MAX_REASON]
    if 400 <= status < 500 and status != TOO_MANY_REQUESTS:
        return PermanentDeliveryError(reason, opted_out=str(exc.code) == TWILIO_OPTED_OUT)
    return DeliveryError(f"Twilio answered {status}: {reason}"[:MAX_REASON])


def _message(exc: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(exc, TwilioServiceException):  # RFC 9457 problem details
        return exc.detail or exc.title
    return exc.msg.removeprefix(_SDK_PREFIX) or f"HTTP {exc.status}"
