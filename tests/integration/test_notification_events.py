"""Accounts, quotes, reviews and chat notify through the catalogue, on SQLite and PostgreSQL, with the real services
(bootstrap's wiring, dev email and SMS outboxes, inline jobs, the embedded search engine and message store): each
use case writes the right delivery rows for the default preference matrix (in-app + email; SMS only for events that
turn it on and users with a verified phone; security messages by email alone; a new lead in-app only), a user's own
choice is honoured (quotes by email off: the in-app row comes, the email does not; new leads by email and text on),
a new lead reaches the best eligible professionals not matched to it and nobody else, a use case run again with the
same key adds nothing, and a burst of chat messages while someone is away makes one digest per channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from backend.accounts.models import AuthSession, User, UserStatus
from backend.catalog.models import Category
from backend.chat import service as chat_service
from backend.db import utcnow
from backend.notifications.catalogue import Event
from backend.notifications.models import ONE_TIME_TOKEN, Channel, DeliveryStatus, Notification
from backend.orders import quotes
from backend.orders.models import LeadMatch, ServiceRequest
from tests.integration.test_instant_match import WEEKENDS, next_weekday, post, pro, set_match_count
from tests.integration.test_orders import PW, TODAY, make_admin, user
from tests.integration.test_reviews import FROM_PRO, GOOD, deadline, ended

DAYTIME = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # outside SMS quiet hours: texts go at once
PHONE = "+15125550123"
APP, EMAIL, SMS = Channel.IN_APP.value, Channel.EMAIL.value, Channel.SMS.value
MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
WINDOWS_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"


def with_phone(svc, tenant, actor) -> None:
    """A verified phone, the way AccountService.verify_phone leaves it."""
    with svc.db.tenant_session(tenant.id) as s:
        row = s.get(User, actor.id)
        row.phone_e164, row.phone_verified_at = PHONE, utcnow()


@pytest.fixture
def w(svc, tenants):
    """A marketplace with a client (verified phone), two matchable plumbers (one with a verified phone), an
    electrician who matches nothing, and an admin."""
    demo, acme = tenants
    svc.notifications.clock = lambda: DAYTIME
    for tenant in (demo, acme):
        svc.catalog.seed_defaults(tenant.id)
    world = dict(svc=svc, t=demo, acme=acme,
                 client=user(svc, demo, "client@example.com", name="Maria Lopez"),
                 other_client=user(svc, demo, "other@example.com", name="Olga Other"),
                 pro=pro(svc, demo, "pro@example.com", name="Alex Rivera"),
                 pro2=pro(svc, demo, "pro2@example.com", name="Sam Second"),
                 electrician=pro(svc, demo, "sparky@example.com", slugs=("electrical",), name="Ed Sparks"),
                 admin=make_admin(svc, demo))
    with_phone(svc, demo, world["client"])
    with_phone(svc, demo, world["pro"])
    return world


def rows(w, **where) -> list[Notification]:
    with w["svc"].db.tenant_session(w["t"].id) as s:
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        return list(s.exec(query).all())


def sent(w, event: Event) -> set[tuple[int, str]]:
    """(user id, channel) of the event's delivery rows."""
    return {(n.user_id, n.channel) for n in rows(w, event=event.value)}


def to(w, *keys: str, channels=(APP, EMAIL)) -> set[tuple[int, str]]:
    return {(w[key].id, channel) for key in keys for channel in channels}


# ---------------------------------------------------------------- accounts: security messages


def test_verify_and_reset_emails_carry_their_one_time_link_sealed(w):
    svc, t = w["svc"], w["t"]
    newcomer = user(svc, t, "newcomer@example.com", name="Nina Newcomer")
    [verify] = rows(w, event=Event.VERIFY_EMAIL.value, user_id=newcomer.id)
    assert (verify.channel, verify.status, verify.group) == (EMAIL, DeliveryStatus.SENT, "security")
    assert verify.subject == "Confirm your email for Demo" and verify.unsubscribe_url == ""  # cannot be turned off
    assert "Hi Nina," in verify.body and f"expires in {svc.settings.verify_token_hours} hours" in verify.body
    assert f"/verify?token={ONE_TIME_TOKEN}" in verify.link and verify.sealed_token == ""  # erased once sent
    delivered = svc.notifications.dev_mailbox.read(verify.provider_id)
    token = delivered.split("/verify?token=")[1].split()[0]
    assert token not in verify.body and token not in verify.html_body
    assert svc.accounts.verify_email(t, token) == "newcomer@example.com"

    svc.accounts.request_password_reset(t, "client@example.com")  # the client has a verified phone: still email only
    [reset] = rows(w, event=Event.RESET_PASSWORD.value)
    assert (reset.user_id, reset.channel, reset.status) == (w["client"].id, EMAIL, DeliveryStatus.SENT)
    assert reset.subject == "Reset your Demo password" and "Hi Maria," in reset.body
    token = svc.notifications.dev_mailbox.read(reset.provider_id).split("/reset?token=")[1].split()[0]
    svc.accounts.reset_password(t, token, "a brand new passphrase")
    svc.accounts.request_password_reset(t, "client@example.com")  # a second request is a second message
    assert len(rows(w, event=Event.RESET_PASSWORD.value)) == 2
    svc.accounts.request_password_reset(t, "nobody@example.com")
    assert len(rows(w, event=Event.RESET_PASSWORD.value)) == 2


def test_a_login_from_a_new_device_or_network_is_told_by_email_the_first_login_after_sign_up_is_not(w):
    svc, t = w["svc"], w["t"]
    actor, _ = svc.accounts.sign_up(t, {"email": "lee@example.com", "password": PW, "full_name": "Lee Login",
                                        "role": "client"}, ip="203.0.113.24", user_agent=MAC_CHROME)

    def warnings() -> list[Notification]:
        return rows(w, event=Event.NEW_LOGIN.value, user_id=actor.id)

    svc.accounts.login(t, "lee@example.com", PW, ip="198.51.100.7", user_agent=WINDOWS_FIREFOX)
    assert warnings() == []  # the first login after sign-up: expected from anywhere
    svc.accounts.login(t, "lee@example.com", PW, ip="203.0.113.24", user_agent=MAC_CHROME)
    svc.accounts.login(t, "lee@example.com", PW, ip="198.51.100.7", user_agent=MAC_CHROME)  # both seen already
    assert warnings() == []

    with_phone(svc, t, actor)  # SMS is available for new logins but off by default: still email only
    svc.accounts.login(t, "lee@example.com", PW, ip="192.0.2.55", user_agent=MAC_CHROME)  # a new network
    [warning] = warnings()
    assert (warning.channel, warning.status, warning.link) == (EMAIL, DeliveryStatus.SENT, "/forgot")
    assert warning.subject == "New sign-in to your Demo account"
    assert "Device: Chrome on macOS" in warning.body and "IP address: 192.0.2.55" in warning.body

    svc.accounts.login(t, "lee@example.com", PW, ip="192.0.2.55",
                       user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")  # a new device
    assert "Device: Safari on iPhone" in warnings()[-1].body and len(warnings()) == 2

    with svc.db.tenant_session(t.id) as s:  # sessions older than 90 days are forgotten
        for row in s.exec(select(AuthSession).where(AuthSession.user_id == actor.id,
                                                    AuthSession.ip == "198.51.100.7")).all():
            row.created_at = utcnow() - timedelta(days=91)
    svc.accounts.login(t, "lee@example.com", PW, ip="198.51.100.7", user_agent=MAC_CHROME)
    assert len(warnings()) == 3


# ---------------------------------------------------------------- quotes and leads


def test_instant_match_quote_and_acceptance_notify_the_right_people_on_the_right_channels(w):
    svc, t = w["svc"], w["t"]
    request_id = post(svc, t, w["client"], title="Fix a leaking kitchen faucet")
    with svc.db.tenant_session(t.id) as s:
        matched = {m.pro_id for m in s.exec(select(LeadMatch).where(LeadMatch.request_id == request_id)).all()}
    assert matched == {w["pro"].id, w["pro2"].id}
    # matched pros: in-app + email; SMS (on by default for matches) only to the one with a verified phone
    assert sent(w, Event.LEAD_MATCHED) == to(w, "pro", "pro2") | {(w["pro"].id, SMS)}
    [text] = rows(w, event=Event.LEAD_MATCHED.value, channel=SMS)
    assert (text.recipient, text.status) == (PHONE, DeliveryStatus.SENT) and len(text.body) <= 160
    assert svc.notifications.dev_sms.messages(PHONE)[0].body == text.body
    [note] = rows(w, event=Event.LEAD_MATCHED.value, channel=APP, user_id=w["pro"].id)
    assert note.subject == "You were matched with Maria" and note.link == f"/pro/leads/{request_id}"
    assert sent(w, Event.LEAD_NEW) == set()  # every eligible pro was matched: nobody is left to tell of a new lead

    quote_id = svc.quotes.send_quote(t, w["pro"], request_id, {
        "price": "240", "message": "Hi Maria, I can come by Saturday morning.", "duration_hours": 2,
        "valid_until": (TODAY + timedelta(days=7)).isoformat()})
    # the client has a verified phone, but quotes are not texted
    assert sent(w, Event.QUOTE_RECEIVED) == to(w, "client")
    [email] = rows(w, event=Event.QUOTE_RECEIVED.value, channel=EMAIL)
    assert email.subject == "Alex Rivera sent you a quote: $240.00 for Fix a leaking kitchen faucet"
    assert email.link == f"/requests/{request_id}" and email.unsubscribe_url and email.status == DeliveryStatus.SENT
    assert "Hi Maria, I can come by Saturday morning." in email.body

    order_id = svc.quotes.accept_quote(t, w["client"], quote_id)
    assert sent(w, Event.QUOTE_ACCEPTED) == to(w, "pro")
    [hired] = rows(w, event=Event.QUOTE_ACCEPTED.value, channel=APP)
    assert (hired.subject, hired.link) == ("Maria Lopez hired you", f"/orders/{order_id}")


def test_a_client_who_turned_quote_emails_off_gets_the_in_app_row_only(w):
    svc, t = w["svc"], w["t"]
    svc.notifications.set_preference(w["client"], "quotes", EMAIL, False)
    request_id = post(svc, t, w["client"])
    svc.quotes.send_quote(t, w["pro"], request_id, {
        "price": "120", "message": "Tomorrow morning works.", "duration_hours": 2,
        "valid_until": (TODAY + timedelta(days=7)).isoformat()})
    assert sent(w, Event.QUOTE_RECEIVED) == {(w["client"].id, APP)}
    [item] = svc.notifications.inbox(w["client"], unread_only=True)
    assert item.title == "New quote from Alex Rivera" and item.link == f"/requests/{request_id}"
    assert svc.notifications.dev_mailbox is not None and not any(
        "sent you a quote" in m.subject for m in svc.notifications.outbox(w["admin"]))


def test_a_use_case_run_again_with_the_same_key_adds_nothing(w):
    """What a retried use case (a redelivered job, a replayed request) does: the same keys, no new rows."""
    svc, t = w["svc"], w["t"]
    weekender = pro(svc, t, "weekend@example.com", availability=WEEKENDS)
    svc.notifications.set_preference(weekender, "new_leads", EMAIL, True)
    request_id = post(svc, t, w["client"], preferred_start=next_weekday(2).isoformat())
    before = rows(w)
    assert {(n.user_id, n.event) for n in before if n.event == Event.LEAD_NEW.value} == {
        (weekender.id, Event.LEAD_NEW.value)}
    with svc.db.tenant_session(t.id) as s:
        request = s.get(ServiceRequest, request_id)
        category = s.get(Category, request.category_id)
        matches = list(s.exec(select(LeadMatch).where(LeadMatch.request_id == request_id)).all())
        assert svc.quotes._notify_matches(s, t, request, category, matches) == []
        again = svc.quotes._new_lead_pros(s, t, request, matched={m.pro_id for m in matches})
        assert again == [weekender.id]
        assert svc.quotes._notify_new_lead(s, t, request, category, again) == []
    assert [n.id for n in rows(w)] == [n.id for n in before]


def matched_to(w, request_id) -> set[int]:
    with w["svc"].db.tenant_session(w["t"].id) as s:
        return {m.pro_id for m in s.exec(select(LeadMatch).where(LeadMatch.request_id == request_id)).all()}


def test_a_new_lead_tells_the_eligible_pros_instant_match_left_out_in_the_app_only(w):
    """Matched pros must work on the request's date; a new lead is any pro's whose inbox lists it. So on a
    Wednesday the weekend plumbers are not matched, and they (not the matched, not other trades, places,
    marketplaces or suspended accounts) hear of the lead: in the app only, a verified phone or not."""
    svc, t = w["svc"], w["t"]
    weekender = pro(svc, t, "weekend@example.com", availability=WEEKENDS, name="Wes Weekend")
    with_phone(svc, t, weekender)
    weekender2 = pro(svc, t, "weekend2@example.com", availability=WEEKENDS, name="Wynn Weekend")
    pro(svc, t, "boston@example.com", city="Boston", availability=WEEKENDS)  # not in their service area
    pro(svc, t, "sparks2@example.com", slugs=("electrical",), availability=WEEKENDS)  # another trade
    gone = pro(svc, t, "gone@example.com", availability=WEEKENDS)
    svc.accounts.set_user_status(t, w["admin"], gone.id, UserStatus.SUSPENDED)
    pro(svc, w["acme"], "acme-pro@example.com", availability=WEEKENDS)  # another marketplace

    request_id = post(svc, t, w["client"], title="Fix a leaking kitchen faucet",
                      preferred_start=next_weekday(2).isoformat())
    assert matched_to(w, request_id) == {w["pro"].id, w["pro2"].id}
    assert sent(w, Event.LEAD_NEW) == {(weekender.id, APP), (weekender2.id, APP)}
    [note] = rows(w, event=Event.LEAD_NEW.value, user_id=weekender.id)
    assert (note.subject, note.link, note.group) == ("New lead: Fix a leaking kitchen faucet",
                                                     f"/pro/leads/{request_id}", "new_leads")
    assert note.body.startswith("Plumbing in Austin, TX, United States. Budget $50.00 – $150.00, ")
    with svc.db.tenant_session(w["acme"].id) as s:
        assert s.exec(select(Notification).where(Notification.event == Event.LEAD_NEW.value)).all() == []
    # the lead is in their inbox, which is what the message points to
    assert request_id in {lead.id for lead in svc.quotes.leads(t, weekender)}


def test_new_leads_by_email_and_text_are_opt_in(w):
    svc, t = w["svc"], w["t"]
    weekender = pro(svc, t, "weekend@example.com", availability=WEEKENDS, name="Wes Weekend")
    with_phone(svc, t, weekender)
    svc.notifications.set_preference(weekender, "new_leads", EMAIL, True)
    svc.notifications.set_preference(weekender, "new_leads", SMS, True)
    request_id = post(svc, t, w["client"], title="Fix a leaking kitchen faucet",
                      preferred_start=next_weekday(2).isoformat())
    assert sent(w, Event.LEAD_NEW) == {(weekender.id, APP), (weekender.id, EMAIL), (weekender.id, SMS)}
    [email] = rows(w, event=Event.LEAD_NEW.value, channel=EMAIL)
    assert email.subject == "New Plumbing lead in Austin, TX, United States: Fix a leaking kitchen faucet"
    assert email.status == DeliveryStatus.SENT and email.link == f"/pro/leads/{request_id}"
    assert email.unsubscribe_url  # turns off new leads by email, not matches
    [text] = rows(w, event=Event.LEAD_NEW.value, channel=SMS)
    assert (text.recipient, text.status) == (PHONE, DeliveryStatus.SENT) and len(text.body) <= 160
    # matches keep their own defaults: the matched pro with a phone is still texted about the match
    assert (w["pro"].id, SMS) in sent(w, Event.LEAD_MATCHED)


def test_a_new_lead_reaches_the_best_by_the_ranking_up_to_the_cap(w, monkeypatch):
    svc, t = w["svc"], w["t"]
    monkeypatch.setattr(quotes, "NEW_LEAD_RECIPIENTS", 1)
    plain = pro(svc, t, "weekend@example.com", availability=WEEKENDS)
    verified = pro(svc, t, "weekend2@example.com", availability=WEEKENDS)
    svc.accounts.set_pro_verified(t, w["admin"], verified.id, True)  # ranks above an otherwise equal pro
    post(svc, t, w["client"], preferred_start=next_weekday(2).isoformat())
    assert sent(w, Event.LEAD_NEW) == {(verified.id, APP)}
    assert plain.id not in {user_id for user_id, _ in sent(w, Event.LEAD_NEW)}  # in their inbox, not told


def test_without_instant_match_the_new_lead_goes_to_every_eligible_pro(w):
    svc = w["svc"]
    svc.accounts.create_operator("op@example.com", PW)
    t = set_match_count({**w, "operator": svc.accounts.operator_login("op@example.com", PW)[0]}, 0)
    request_id = post(svc, t, w["client"])
    assert matched_to(w, request_id) == set()
    assert sent(w, Event.LEAD_NEW) == to(w, "pro", "pro2", channels=(APP,))


# ---------------------------------------------------------------- reviews


def test_review_events_reach_the_parties_and_reports_reach_the_admins(w):
    svc, t = w["svc"], w["t"]
    order_id = ended(w)  # booked, paid, delivered and completed: the job at completion opens the review window
    assert sent(w, Event.REVIEW_REQUESTED) == to(w, "client", "pro")  # no SMS for reviews, phone or not
    [asked] = rows(w, event=Event.REVIEW_REQUESTED.value, channel=EMAIL, user_id=w["client"].id)
    assert "Review Alex Rivera by" in asked.body and asked.link == f"/orders/{order_id}"

    svc.reviews.submit(t, w["client"], order_id, GOOD)
    closes = deadline(w, order_id)
    svc.reviews.run_timers(t, closes - timedelta(days=1))
    svc.reviews.run_timers(t, closes - timedelta(hours=1))  # a reminder goes once
    assert sent(w, Event.REVIEW_REMINDER) == to(w, "pro")  # the client has reviewed already

    svc.reviews.submit(t, w["pro"], order_id, FROM_PRO)  # both are in: both published at once
    assert sent(w, Event.REVIEW_PUBLISHED) == to(w, "client", "pro")
    [to_pro] = rows(w, event=Event.REVIEW_PUBLISHED.value, channel=APP, user_id=w["pro"].id)
    assert to_pro.subject == "Maria Lopez left you a 5-star review"

    review = svc.reviews.mine(t, w["pro"]).received[0]
    svc.reviews.report(t, w["other_client"], review.id, "It reads like an advert")
    svc.reviews.report(t, w["electrician"], review.id, "Copied from another site")  # one alert per open case
    admin2 = make_admin(svc, t, "deputy@example.com")
    assert sent(w, Event.ADMIN_REVIEW_REPORTED) == to(w, "admin")  # the admins of the time of the report
    [alert] = rows(w, event=Event.ADMIN_REVIEW_REPORTED.value, channel=EMAIL)
    assert alert.link == "/admin/reviews" and "It reads like an advert" in alert.body
    assert sent(w, Event.REVIEW_MODERATED) == to(w, "pro")  # the reviewed person hears of the report
    svc.reviews.hide(t, admin2, review.id, "Reads like an advert for another business")
    assert sent(w, Event.REVIEW_MODERATED) == to(w, "pro", "client")


# ---------------------------------------------------------------- chat


class ChatClock:
    """Chat's clock: one second further at each reading, from a minute into a digest period."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 7, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_three_messages_in_one_quiet_period_make_one_digest_per_channel(w, monkeypatch):
    svc, t = w["svc"], w["t"]
    monkeypatch.setattr(chat_service, "utcnow", ChatClock())
    request_id = post(svc, t, w["client"])
    svc.quotes.send_quote(t, w["pro"], request_id, {
        "price": "120", "message": "Tomorrow morning works.", "duration_hours": 2,
        "valid_until": (TODAY + timedelta(days=7)).isoformat()})
    [conversation] = svc.chat.conversations(t, w["client"])
    for text in ("Hi Alex, are you free on Saturday?", "Morning would be best.", "Could you bring a cartridge?"):
        svc.chat.send(t, w["client"], conversation.id, text)
    # the pro has a verified phone: digests are never texted
    assert sent(w, Event.MESSAGES_DIGEST) == to(w, "pro")
    [digest] = rows(w, event=Event.MESSAGES_DIGEST.value, channel=EMAIL)
    assert digest.subject == "New message from Maria Lopez" and digest.link == f"/messages/{conversation.id}"
    assert '"Hi Alex, are you free on Saturday?"' in digest.body and digest.status == DeliveryStatus.SENT
    svc.chat.send(t, w["pro"], conversation.id, "Yes, 9 am.")  # the client is online (just wrote): no digest
    assert sent(w, Event.MESSAGES_DIGEST) == to(w, "pro")
