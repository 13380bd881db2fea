"""The in-app bell's signal on SQLite and PostgreSQL, through both feeds (in process, and a Redis list at
127.0.0.1:6379 under a key of its own per test): users are rung after their in-app notifications commit, never for a
transaction that rolls back, not when a savepoint is released mid-transaction, and the web side sees only open bells."""

from __future__ import annotations

import uuid

import pytest
import redis

from backend.notifications.adapters.redis_bell import RedisBell
from backend.notifications.bell import LocalBell
from backend.notifications.catalogue import CATALOGUE, Event, Group
from backend.notifications.models import Channel
from tests.integration.test_notification_service import env  # noqa: F401 - the service on both databases

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["local", "redis"])
def bell(request):
    if request.param == "local":
        yield LocalBell()
        return
    key = f"test:bell:{uuid.uuid4().hex}"
    feed = RedisBell.from_url(REDIS_URL, key=key)
    try:
        feed.quick.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed at {REDIS_URL}: {exc}")
    yield feed
    feed.quick.delete(key, feed.watch_key)


@pytest.fixture
def rung(env, bell):  # noqa: F811
    """The service with the bell; returns a reader of what it published since the last read."""
    env.notifications.bell = bell
    assert bell.wait(0.01) == []
    return lambda: bell.wait(1.0)


def _ids(env, *names):  # noqa: F811
    return [(env.demo.id, env.users[n].id) for n in names]


def test_users_are_rung_after_the_commit_only_for_in_app_rows(env, bell, rung):  # noqa: F811
    with env.db.tenant_session(env.demo.id) as s:
        env.notifications.notify(s, env.demo, Event.LEAD_MATCHED, [env.users["pro"].id, env.users["pro2"].id],
                                 key="match:1", context=CATALOGUE[Event.LEAD_MATCHED].sample)
        assert bell.wait(0.05) == []  # not while the transaction is open
    assert sorted(rung()) == sorted(_ids(env, "pro", "pro2"))
    # the same key again writes nothing new: nobody is rung
    env.notify(env.demo, Event.LEAD_MATCHED, ["pro"], key="match:1")
    assert bell.wait(0.05) == []
    # phone codes are SMS only: no in-app row, no ring
    env.notify(env.demo, Event.PHONE_CODE, ["pro"], key="code:1", context={"code": "123456"}, sms_to="+15125550100")
    assert bell.wait(0.05) == []


def test_a_rolled_back_transaction_rings_nobody(env, bell, rung):  # noqa: F811
    with pytest.raises(RuntimeError), env.db.tenant_session(env.demo.id) as s:
        env.notifications.notify(s, env.demo, Event.QUOTE_RECEIVED, [env.users["client"].id], key="quote:1",
                                 context=CATALOGUE[Event.QUOTE_RECEIVED].sample)
        raise RuntimeError("the use case failed after notifying")
    assert bell.wait(0.2) == []
    assert env.notifications.unread_count(env.users["client"]) == 0
    # the next transaction on a new session rings only for itself
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:2")
    assert rung() == _ids(env, "client")


def test_a_released_savepoint_does_not_ring_before_the_commit(env, bell, rung):  # noqa: F811
    with env.db.tenant_session(env.demo.id) as s:
        env.notifications.notify(s, env.demo, Event.QUOTE_RECEIVED, [env.users["client"].id], key="quote:1",
                                 context=CATALOGUE[Event.QUOTE_RECEIVED].sample)
        with s.begin_nested():  # e.g. a second notify() on PostgreSQL, or the caller's own savepoint
            env.notifications.notify(s, env.demo, Event.LEAD_MATCHED, [env.users["pro"].id], key="match:1",
                                     context=CATALOGUE[Event.LEAD_MATCHED].sample)
        assert bell.wait(0.05) == []
    assert sorted(rung()) == sorted(_ids(env, "client", "pro"))


def test_a_user_who_turned_in_app_off_is_not_rung(env, bell, rung):  # noqa: F811
    env.notifications.set_preference(env.users["client"], Group.QUOTES, Channel.IN_APP, False)
    env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key="quote:1")
    assert bell.wait(0.05) == []


def test_reading_rings_the_readers_other_tabs_and_the_bell_view_counts(env, bell, rung):  # noqa: F811
    client = env.users["client"]
    for n in range(3):
        env.clock.now = env.clock.now.replace(second=n)
        env.notify(env.demo, Event.QUOTE_RECEIVED, ["client"], key=f"quote:{n}", link=f"/requests/{n}")
    assert rung() == _ids(env, "client")  # three commits, one user: taken together, once
    view = env.notifications.bell_view(env.demo.id, client.id, limit=2)
    assert view.unread == 3 and [i.link for i in view.items] == ["/requests/2", "/requests/1"]
    env.notifications.mark_read(client, view.items[0].id)
    assert rung() == _ids(env, "client")
    env.notifications.mark_read(client, view.items[0].id)  # already read: nothing changed, no ring
    assert bell.wait(0.05) == []
    assert env.notifications.mark_all_read(client) == 2
    assert rung() == _ids(env, "client")
    assert env.notifications.mark_all_read(client) == 0
    assert bell.wait(0.05) == []
    assert env.notifications.bell_view(env.demo.id, client.id).unread == 0
    # another marketplace's user with the same id space sees nothing of it
    assert env.notifications.bell_view(env.acme.id, client.id).unread == 0


def test_only_open_bells_are_pushed(bell):
    assert bell.watched([(1, 5), (1, 6)]) == []
    bell.watch(1, 5)
    bell.watch(2, 5)
    assert bell.watched([(1, 5), (1, 6), (2, 5), (1, 5)]) == [(1, 5), (2, 5)]


def test_a_closed_bell_is_forgotten():
    clock = [100.0]
    feed = LocalBell(watch_seconds=60, clock=lambda: clock[0])
    feed.watch(1, 5)
    clock[0] += 61
    assert feed.watched([(1, 5)]) == []


def test_signals_wait_for_a_reader_and_a_redis_outage_loses_only_the_ring():
    feed = RedisBell.from_url("redis://127.0.0.1:1/0", key=f"test:bell:{uuid.uuid4().hex}")
    feed.publish(1, [5])  # Redis down: logged, the committed use case is not troubled
    feed.watch(1, 5)
    assert feed.wait(1.0) == []


def test_a_bounded_local_queue_keeps_the_newest_when_nobody_drains_it():
    feed = LocalBell(max_pending=3)
    for user in range(10):
        feed.publish(1, [user])
    assert feed.wait(0.01) == [(1, 7), (1, 8), (1, 9)]


def test_redis_signals_are_taken_once_by_one_reader():
    key = f"test:bell:{uuid.uuid4().hex}"
    one, two = RedisBell.from_url(REDIS_URL, key=key), RedisBell.from_url(REDIS_URL, key=key)
    try:
        one.publish(3, [1, 2, 2])
        one.publish(3, [2])
        one.quick.rpush(key, "not json")
        assert one.wait(1.0) == [(3, 1), (3, 2)]
        assert two.wait(1.0) == []
    finally:
        one.quick.delete(key)
