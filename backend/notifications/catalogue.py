"""The event catalogue: every message the marketplace sends, its preference group, the channels it may use and
what its templates need.

A user chooses per GROUP and channel (the preference matrix), not per event: ten rows are something a person can
reason about, thirty-two are not. Each event still says which channels make sense for it (a phone code is an SMS,
a password reset an email) and which are on by default, like Thumbtack: in-app and email for everything, SMS only
where minutes matter (a lead you were matched to, a booking request) unless the user opts in. The one exception is
a new lead nobody matched you to (NEW_LEADS): in-app only unless the pro opts in, since a busy category would
otherwise fill their inbox. It is a group of its own because a group's stored choice is only kept when it differs
from the group's default: inside LEADS (email and SMS on for matches) "email me new leads too" could not be said.

Templates live in `templates/<event>.<channel part>.j2`; `context` lists the keys they read, and `sample` is a
context they render with (tests, the preview). Money, dates and names come preformatted: templates do no
arithmetic and no formatting rules live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from backend.notifications.models import Channel


class Group(StrEnum):
    LEADS = "leads"
    NEW_LEADS = "new_leads"
    QUOTES = "quotes"
    BOOKINGS = "bookings"
    ORDERS = "orders"
    PAYMENTS = "payments"
    REVIEWS = "reviews"
    MESSAGES = "messages"
    SECURITY = "security"
    ADMIN = "admin"


GROUP_LABELS: Mapping[Group, str] = MappingProxyType({
    Group.LEADS: "Leads matched to you",
    Group.NEW_LEADS: "New leads in your area",
    Group.QUOTES: "Quotes",
    Group.BOOKINGS: "Bookings",
    Group.ORDERS: "Order updates",
    Group.PAYMENTS: "Payments and payouts",
    Group.REVIEWS: "Reviews",
    Group.MESSAGES: "Chat messages",
    Group.SECURITY: "Account security",
    Group.ADMIN: "Admin alerts",
})


# Groups only professionals receive: a client's or an admin's preference matrix does not offer them.
PRO_GROUPS = frozenset({Group.LEADS, Group.NEW_LEADS})

class Event(StrEnum):
    LEAD_NEW = "lead_new"                      # pro: a new request in their category and area they can quote on
    LEAD_MATCHED = "lead_matched"              # pro: the client was matched to them (instant match / invitation)
    QUOTE_RECEIVED = "quote_received"          # client: a pro sent a quote for their request
    QUOTE_ACCEPTED = "quote_accepted"          # pro: the client accepted their quote (an order exists)
    BOOKING_REQUESTED = "booking_requested"    # pro: a client asks to book a time
    BOOKING_SENT = "booking_sent"              # client: the receipt of their booking request
    BOOKING_ACCEPTED = "booking_accepted"      # client: the pro confirmed the booking
    BOOKING_DECLINED = "booking_declined"      # client: the pro cannot take it
    PAYMENT_HELD = "payment_held"              # pro: the client paid, the money is held: work can start
    WORK_STARTED = "work_started"              # client: the pro started
    WORK_DELIVERED = "work_delivered"          # client: the pro marked it done; approve or it completes by itself
    AUTO_COMPLETE_SOON = "auto_complete_soon"  # client: the delivered order completes by itself soon
    ORDER_COMPLETED = "order_completed"        # both parties
    ORDER_CANCELLED = "order_cancelled"        # the other party (both when the marketplace's admin cancels)
    ORDER_EXPIRED = "order_expired"            # both parties: an accepted order was not paid in time
    REVIEW_REQUESTED = "review_requested"      # both parties, when the review window opens
    REVIEW_REMINDER = "review_reminder"        # whoever has not reviewed, before the window closes
    REVIEW_PUBLISHED = "review_published"      # the reviewed party
    REVIEW_MODERATED = "review_moderated"      # author and subject: a review was reported, hidden or restored
    PAYOUT_SENT = "payout_sent"                # pro: money is on its way to their bank
    DISPUTE_OPENED = "dispute_opened"          # the other party of the order
    DISPUTE_RESOLVED = "dispute_resolved"      # both parties
    MESSAGES_DIGEST = "messages_digest"        # one per conversation per quiet period, never one per message
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    PHONE_CODE = "phone_code"
    NEW_LOGIN = "new_login"
    ADMIN_DISPUTE_OPENED = "admin_dispute_opened"
    ADMIN_WEBHOOK_FAILED = "admin_webhook_failed"
    ADMIN_PAYOUT_FAILED = "admin_payout_failed"
    ADMIN_DELIVERY_FAILED = "admin_delivery_failed"
    ADMIN_REVIEW_REPORTED = "admin_review_reported"


@dataclass(frozen=True)
class EventSpec:
    event: Event
    group: Group
    channels: frozenset[Channel]    # the channels this event can use at all
    defaults: frozenset[Channel]    # on unless the user turned them off (a subset of `channels`)
    context: tuple[str, ...]        # the context keys its templates read
    sample: Mapping[str, Any]       # a context that renders (tests, the preview)

    def __post_init__(self) -> None:
        if not self.defaults <= self.channels:
            raise ValueError(f"{self.event}: default channels {sorted(self.defaults - self.channels)} "
                             f"are not among its channels")
        missing = [key for key in self.context if key not in self.sample]
        if missing:
            raise ValueError(f"{self.event}: the sample lacks {', '.join(missing)}")


E, S, A = Channel.EMAIL, Channel.SMS, Channel.IN_APP
_APP = frozenset({A})
_APP_EMAIL = frozenset({A, E})
_APP_EMAIL_SMS = frozenset({A, E, S})


def _spec(event: Event, group: Group, channels: frozenset[Channel], defaults: frozenset[Channel],
          **sample: Any) -> EventSpec:
    """The context keys are the sample's keys, in order: one place to name them. Push follows in-app (see
    `with_push`)."""
    channels, defaults = with_push(group, channels, defaults)
    return EventSpec(event=event, group=group, channels=channels, defaults=defaults, context=tuple(sample),
                     sample=MappingProxyType(sample))


def with_push(group: Group, channels: frozenset[Channel],
              defaults: frozenset[Channel]) -> tuple[frozenset[Channel], frozenset[Channel]]:
    """Web push is the in-app notification shown on the user's devices, with the in-app title and body: an event
    that has an in-app message may be pushed, and the push is on by default wherever in-app is, since a user only
    gets pushes at all on a device where they turned them on. Except new leads nobody matched the pro to: in-app
    only unless they opt in (a busy category would otherwise buzz their phone all day, the reason their email is
    off too). Security messages have no in-app message, so no push: they keep to email and SMS."""
    if Channel.IN_APP not in channels:
        return channels, defaults
    channels = channels | {Channel.PUSH}
    if Channel.IN_APP in defaults and group != Group.NEW_LEADS:
        defaults = defaults | {Channel.PUSH}
    return channels, defaults


_SPECS = (
    # Leads: for professionals. A match is personal and time-critical (the first pros to answer win): SMS on.
    # A new lead goes to the next best pros after the matches (quotes.NEW_LEAD_RECIPIENTS of them), in-app only
    # unless they opt in: a busy category would otherwise flood their inboxes.
    _spec(Event.LEAD_NEW, Group.NEW_LEADS, _APP_EMAIL_SMS, _APP,
          request_title="Fix a leaking kitchen faucet", category="Plumbing", city="Austin", budget="$150 – $300",
          when="Sat, Jun 14 – Sun, Jun 15"),
    _spec(Event.LEAD_MATCHED, Group.LEADS, _APP_EMAIL_SMS, _APP_EMAIL_SMS,
          client_first_name="Maria", request_title="Fix a leaking kitchen faucet", category="Plumbing",
          city="Austin", why="You're one of the top-rated plumbers near Austin and free on Saturday."),
    # Quotes
    _spec(Event.QUOTE_RECEIVED, Group.QUOTES, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", request_title="Fix a leaking kitchen faucet", amount="$240.00",
          message_excerpt="Hi Maria, I can come by Saturday morning. Price includes a new cartridge if needed."),
    _spec(Event.QUOTE_ACCEPTED, Group.QUOTES, _APP_EMAIL, _APP_EMAIL,
          client_name="Maria Lopez", request_title="Fix a leaking kitchen faucet", amount="$240.00"),
    # Bookings: a request to book is answered within hours or lost: SMS on.
    _spec(Event.BOOKING_REQUESTED, Group.BOOKINGS, _APP_EMAIL_SMS, _APP_EMAIL_SMS,
          client_name="Maria Lopez", service_title="Faucet repair", when="Sat, Jun 14, 9:00 AM", amount="$240.00"),
    _spec(Event.BOOKING_SENT, Group.BOOKINGS, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", service_title="Faucet repair", when="Sat, Jun 14", amount="$240.00",
          pay_within="48 hours"),
    _spec(Event.BOOKING_ACCEPTED, Group.BOOKINGS, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", service_title="Faucet repair", when="Sat, Jun 14, 9:00 AM"),
    _spec(Event.BOOKING_DECLINED, Group.BOOKINGS, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", service_title="Faucet repair", when="Sat, Jun 14, 9:00 AM",
          reason="I'm booked that morning, but Sunday works if that suits you."),
    # Payments and payouts: for the pro, "the money is there" and "the money is on its way".
    _spec(Event.PAYMENT_HELD, Group.PAYMENTS, _APP_EMAIL_SMS, _APP_EMAIL,
          amount="$240.00", order_title="Fix a leaking kitchen faucet", other_party="Maria Lopez"),
    _spec(Event.PAYOUT_SENT, Group.PAYMENTS, _APP_EMAIL_SMS, _APP_EMAIL,
          amount="$216.00", destination="bank account ending in 4242", arrival="Tue, Jun 17"),
    # Order updates
    _spec(Event.WORK_STARTED, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", order_title="Fix a leaking kitchen faucet"),
    _spec(Event.WORK_DELIVERED, Group.ORDERS, _APP_EMAIL_SMS, _APP_EMAIL,
          pro_name="Alex Rivera", order_title="Fix a leaking kitchen faucet", auto_complete_in="7 days"),
    _spec(Event.AUTO_COMPLETE_SOON, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", hours_left=24),
    _spec(Event.ORDER_COMPLETED, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", other_party="Alex Rivera"),
    _spec(Event.ORDER_CANCELLED, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", cancelled_by="Maria Lopez",
          reason="We found someone available sooner, sorry.",
          refund="The $240.00 held for this order is refunded to the client."),
    _spec(Event.ORDER_EXPIRED, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", other_party="Maria Lopez", pay_within="48 hours",
          next_step="Nothing was charged, and the time you set aside is free again."),
    _spec(Event.DISPUTE_OPENED, Group.ORDERS, _APP_EMAIL_SMS, _APP_EMAIL,
          other_party="Maria Lopez", order_title="Fix a leaking kitchen faucet",
          reason="The faucet still drips after the repair."),
    _spec(Event.DISPUTE_RESOLVED, Group.ORDERS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet",
          outcome="$120.00 was refunded to the client and $120.00 released to the professional."),
    # Reviews
    _spec(Event.REVIEW_REQUESTED, Group.REVIEWS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", other_party="Alex Rivera", due_date="Sat, Jun 28"),
    _spec(Event.REVIEW_REMINDER, Group.REVIEWS, _APP_EMAIL, _APP_EMAIL,
          order_title="Fix a leaking kitchen faucet", other_party="Alex Rivera", due_date="Sat, Jun 28"),
    _spec(Event.REVIEW_PUBLISHED, Group.REVIEWS, _APP_EMAIL, _APP_EMAIL,
          reviewer_name="Maria Lopez", rating=5, order_title="Fix a leaking kitchen faucet",
          review_excerpt="Alex was on time, explained everything and left the kitchen spotless."),
    _spec(Event.REVIEW_MODERATED, Group.REVIEWS, _APP_EMAIL, _APP_EMAIL,
          review="Maria Lopez's review of you", change="was hidden", order_title="Fix a leaking kitchen faucet",
          note="The marketplace team hid it: it names the professional's home address."),
    # Chat: a digest per conversation, so a busy thread never floods an inbox.
    _spec(Event.MESSAGES_DIGEST, Group.MESSAGES, _APP_EMAIL, _APP_EMAIL,
          sender_name="Alex Rivera", count=3, excerpt="Could you send a photo of the pipe under the sink?",
          conversation_title="Fix a leaking kitchen faucet"),
    # Account security: cannot be turned off. One-time links come through `link` (with ONE_TIME_TOKEN in it).
    _spec(Event.VERIFY_EMAIL, Group.SECURITY, frozenset({E}), frozenset({E}),
          first_name="Maria", expires_in="24 hours"),
    _spec(Event.RESET_PASSWORD, Group.SECURITY, frozenset({E}), frozenset({E}),
          first_name="Maria", expires_in="1 hour"),
    _spec(Event.PHONE_CODE, Group.SECURITY, frozenset({S}), frozenset({S}),
          code="482913"),
    _spec(Event.NEW_LOGIN, Group.SECURITY, frozenset({E, S}), frozenset({E}),
          when="Jun 12, 2025 at 18:04 UTC", device="Chrome on macOS", ip="203.0.113.24"),
    # Admin alerts: what the admin needs to act without opening five pages.
    _spec(Event.ADMIN_DISPUTE_OPENED, Group.ADMIN, _APP_EMAIL, _APP_EMAIL,
          order_id=1042, order_title="Fix a leaking kitchen faucet", opened_by="Maria Lopez (client)",
          against="Alex Rivera (professional)", amount="$240.00", reason="The faucet still drips after the repair."),
    _spec(Event.ADMIN_WEBHOOK_FAILED, Group.ADMIN, _APP_EMAIL, _APP_EMAIL,
          provider="Stripe", event_type="payment_intent.succeeded", error="Signature verification failed",
          received_at="Jun 12, 2025 at 18:04 UTC"),
    _spec(Event.ADMIN_PAYOUT_FAILED, Group.ADMIN, _APP_EMAIL, _APP_EMAIL,
          pro_name="Alex Rivera", amount="$216.00", provider="Stripe",
          reason="The bank account was closed (account_closed)."),
    _spec(Event.ADMIN_DELIVERY_FAILED, Group.ADMIN, _APP_EMAIL, _APP_EMAIL,
          channel="email", recipient="maria@example.com", subject="Alex Rivera sent you a quote",
          reason="550 5.1.1 The email account that you tried to reach does not exist."),
    _spec(Event.ADMIN_REVIEW_REPORTED, Group.ADMIN, _APP_EMAIL, _APP_EMAIL,
          reporter_name="Alex Rivera", reviewer_name="Maria Lopez", order_title="Fix a leaking kitchen faucet",
          reason="It names my home address.", review_excerpt="Great work, but he lives at 12 Elm St so ..."),
)

CATALOGUE: Mapping[Event, EventSpec] = MappingProxyType({s.event: s for s in _SPECS})

GROUP_CHANNELS: Mapping[Group, frozenset[Channel]] = MappingProxyType({
    group: frozenset().union(*(s.channels for s in _SPECS if s.group == group)) for group in Group
})

_GROUP_DEFAULTS: Mapping[Group, frozenset[Channel]] = MappingProxyType({
    group: frozenset().union(*(s.defaults for s in _SPECS if s.group == group)) for group in Group
})


def spec(event: Event | str) -> EventSpec:
    """The spec of an event (its value accepted too: rows store the value)."""
    try:
        return CATALOGUE[Event(event)]
    except ValueError:
        raise ValueError(f"Unknown notification event: {event!r}") from None


def locked(group: Group | str) -> bool:
    """Security messages cannot be turned off: a reset link or a new-login warning must always arrive."""
    return Group(group) == Group.SECURITY


def default_enabled(group: Group | str, channel: Channel | str) -> bool:
    """The preference cell's value when the user never touched it: on if any event of the group has the
    channel among its defaults."""
    return Channel(channel) in _GROUP_DEFAULTS[Group(group)]
