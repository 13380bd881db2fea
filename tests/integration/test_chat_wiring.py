"""The chat as bootstrap wires it: conversations open with the first quote and follow the order, and a
message to someone who is away becomes a message digest (in-app and email, per their preferences)."""

from __future__ import annotations

from sqlmodel import select

from backend.notifications.models import Channel, Notification
from tests.integration.test_orders import market, post_request, quote  # noqa: F401 (market is a fixture)


def digests(svc, tenant, user) -> list[Notification]:
    with svc.db.tenant_session(tenant.id) as s:
        return list(s.exec(select(Notification).where(Notification.user_id == user.id,
                                                      Notification.channel == Channel.IN_APP,
                                                      Notification.event == "messages_digest")).all())


def test_quote_opens_a_conversation_that_follows_the_order_and_notifies_the_absent(market):
    m = market
    svc, t = m["svc"], m["t"]
    request_id = post_request(m)
    quote_id = quote(m, request_id)
    [conversation] = svc.chat.conversations(t, m["client"])
    assert (conversation.request_id, conversation.other_id, conversation.order_id) == (request_id, m["pro"].id, None)
    assert svc.chat.conversations(t, m["pro2"]) == []

    svc.chat.send(t, m["client"], conversation.id, "Can you come on Tuesday?")
    [note] = digests(svc, t, m["pro"])
    assert note.subject == "New message from client" and note.link == f"/messages/{conversation.id}"
    assert note.body == 'Fix a leaking kitchen tap: "Can you come on Tuesday?"'
    assert [n.body for n in svc.notifications.recent_in_app(m["pro"])][0] == note.body  # the bell's newest
    assert svc.chat.unread_total(t, m["pro"]) == 1
    assert digests(svc, t, m["client"]) == []

    order_id = svc.quotes.accept_quote(t, m["client"], quote_id)
    assert svc.chat.conversation_for_order(t, m["pro"], order_id) == conversation.id


def test_read_times_per_participant(market):
    m = market
    svc, t = m["svc"], m["t"]
    quote(m, post_request(m))
    [conversation] = svc.chat.conversations(t, m["client"])
    svc.chat.send(t, m["client"], conversation.id, "Hello")
    assert set(svc.chat.read_times(t, m["client"], conversation.id)) == {str(m["client"].id)}
    svc.chat.mark_read(t, m["pro"], conversation.id)
    times = svc.chat.read_times(t, m["pro"], conversation.id)
    assert set(times) == {str(m["client"].id), str(m["pro"].id)}
