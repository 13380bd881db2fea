"""What the notification service may know about the people it writes to (its `Contacts` port).

Notifications sits below accounts and cannot read users itself; bootstrap passes it an AccountContacts. Reads run
in the caller's session (the transaction that causes the event), so they see its tenant only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from backend.accounts.models import User, UserStatus
from backend.identity import Role
from backend.notifications.ports import Contact
from backend.profiles.models import Profile

MAX_IDS_PER_QUERY = 500  # SQLite allows 999 bound parameters per statement; PostgreSQL does not mind


class AccountContacts:
    """Implements backend.notifications.ports.Contacts from the accounts tables (and the profile's full name)."""

    def contacts(self, session: Session, user_ids: Sequence[int]) -> dict[int, Contact]:
        """The active users among `user_ids` in the session's tenant; unknown, other-tenant and suspended ones
        are absent. `phone` is the verified number only: an unverified one never receives SMS."""
        wanted = sorted(set(user_ids))
        found: dict[int, Contact] = {}
        for start in range(0, len(wanted), MAX_IDS_PER_QUERY):
            chunk = wanted[start:start + MAX_IDS_PER_QUERY]
            rows = session.exec(
                select(User, Profile.full_name)
                .join(Profile, Profile.user_id == User.id, isouter=True)
                .where(User.id.in_(chunk), User.status == UserStatus.ACTIVE)
            ).all()
            for user, full_name in rows:
                found[user.id] = _contact(user, full_name)
        return found

    def admins(self, session: Session) -> list[int]:
        """The session's tenant's active admins, oldest first."""
        return list(session.exec(
            select(User.id).where(User.role == Role.ADMIN, User.status == UserStatus.ACTIVE).order_by(User.id)
        ).all())


def _contact(user: User, full_name: str | None) -> Contact:
    # Every sign-up writes a profile with a full name; an account without one (seeded, or made by hand)
    # is greeted by its email's local part rather than by nothing.
    name = (full_name or "").strip() or user.email.partition("@")[0]
    return Contact(user_id=user.id, email=user.email, name=name, role=user.role,
                   phone=user.phone_e164 if user.phone_verified_at is not None else "",
                   email_verified=user.email_verified_at is not None, time_zone=user.time_zone or "")
