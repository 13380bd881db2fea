"""Login tickets: how a session token travels from a login (over the WebSocket) into an HttpOnly cookie.

The page's JavaScript never holds a session token: a login hands it a sealed ticket instead, which the page POSTs
once to `/api/v1/session`; that HTTP response sets the HttpOnly cookie. A ticket is encrypted and authenticated
(SecretBox), names its kind and tenant, and is worthless after TICKET_SECONDS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from backend.config import Settings
from backend.crypto import SecretBox

TICKET_SECONDS = 60
Kind = Literal["user", "operator"]


@dataclass(frozen=True)
class Ticket:
    kind: Kind
    tenant_id: int | None  # None for operators, whose console works on any host
    token: str


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secret_key.get_secret_value(), "login-ticket")


def issue_ticket(settings: Settings, kind: Kind, token: str, tenant_id: int | None = None) -> str:
    return _box(settings).seal(json.dumps({"k": kind, "t": tenant_id, "s": token}))


def redeem_ticket(settings: Settings, ticket: str) -> Ticket | None:
    plain = _box(settings).open(ticket or "", max_age_seconds=TICKET_SECONDS)
    if plain is None:
        return None
    data = json.loads(plain)
    return Ticket(kind=data["k"], tenant_id=data["t"], token=data["s"])
