"""What providers and mail clients call about notifications, beside the REST API.

- SendGrid's signed Event Webhook and Twilio's status callbacks update delivery rows (delivered, bounced, failed). One
  URL for every marketplace: each message carries its reference (`t<tenant>-n<id>`), which names the tenant. A
  request whose signature does not verify changes nothing and gets 403; so does any request while the provider's key
  is not configured (fail closed).
- RFC 8058 one-click unsubscribe: a mail client's "Unsubscribe" button POSTs `List-Unsubscribe=One-Click` to the
  link in the message's `List-Unsubscribe` header; the signed token names one preference (user, group, channel), which
  is turned off. No login, no page: the email's footer link opens the `/unsubscribe` page instead.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from backend.bootstrap import services
from backend.errors import DomainError
from backend.notifications.service import UNSUBSCRIBE_ONE_CLICK
from backend.notifications.webhooks import (
    SENDGRID_EVENTS_PATH,
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    TWILIO_STATUS_PATH,
    parse_sendgrid_events,
    parse_twilio_status,
    verify_sendgrid_signature,
    verify_twilio_signature,
)

router = APIRouter()

REFUSED = "The signature of this request does not verify."


@router.post(SENDGRID_EVENTS_PATH)
async def sendgrid_events(request: Request) -> dict:
    payload = await request.body()
    key = services().settings.sendgrid_webhook_public_key
    try:
        verified = bool(key) and verify_sendgrid_signature(
            key, payload, request.headers.get(SENDGRID_SIGNATURE_HEADER, ""),
            request.headers.get(SENDGRID_TIMESTAMP_HEADER, ""))
    except ValueError:  # an unreadable configured key: refuse, as for a bad signature
        verified = False
    if not verified:
        raise HTTPException(403, REFUSED)
    try:
        updates = parse_sendgrid_events(payload)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"updated": await run_in_threadpool(services().notifications.apply_status, updates)}


@router.post(TWILIO_STATUS_PATH)
async def twilio_status(request: Request, ref: str = "") -> dict:
    settings = services().settings
    params = {key: str(value) for key, value in (await request.form()).items()}
    # Twilio signs the URL it was given (NotificationService's status_callback_url + ?ref=...), which behind a proxy
    # is not the URL this process sees: rebuild it from the configuration.
    url = f"{settings.public_url.rstrip('/')}{TWILIO_STATUS_PATH}?ref={ref}"
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    try:
        verified = bool(token) and verify_twilio_signature(token, url, params,
                                                           request.headers.get(TWILIO_SIGNATURE_HEADER, ""))
    except ValueError:
        verified = False
    if not verified:
        raise HTTPException(403, REFUSED)
    update = parse_twilio_status(params, ref)
    changed = await run_in_threadpool(services().notifications.apply_status, [update]) if update else 0
    return {"updated": changed}


@router.post(UNSUBSCRIBE_ONE_CLICK)
async def one_click_unsubscribe(request: Request, token: str = "") -> PlainTextResponse:
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    if tenant is None:
        raise HTTPException(404, "Marketplace not found")
    try:
        sentence = await run_in_threadpool(services().notifications.unsubscribe, tenant, token)
    except DomainError as exc:
        raise HTTPException(400, exc.message) from None
    return PlainTextResponse(sentence)
