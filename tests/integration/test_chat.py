"""Chat on real servers: conversation metadata in PostgreSQL (RLS), history through pymongo against nx-27017
(the MongoDB wire protocol on SQLite, started in-process by the same helper the embedded default uses),
presence in real Redis (and the in-process stand-in), attachments in the local object store.

What nx-27017 does not do like MongoDB (measured): listIndexes reports every key as ascending and names the
index itself, so the index test checks the key fields and their order, not the direction or name.
"""

from __future__ import annotations

import io
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from PIL import Image
from sqlmodel import select

from backend.identity import Caller, Role
from backend.accounts.models import User
from backend.chat.adapters.mongo import MongoMessageStore, embedded_mongo, make_client
from backend.chat.adapters.presence import LocalPresence, RedisPresence
from backend.chat.models import Conversation, ConversationKind
from backend.chat.ports import StoreUnavailable
from backend.chat import service as chat_service
from backend.chat.service import ChatService, looks_like_pdf
from backend.db import utcnow
from backend.errors import DomainError, NotFound, PermissionDenied, Throttled, ValidationFailed
from backend.notifications.models import Channel, Notification
from backend.catalog.models import Category
from backend.orders.models import Order, OrderState, ServiceRequest
from backend.profiles.models import Profile
from backend.tenancy.models import Tenant
from tests.conftest import _truncate, make_services
from tests.samples import pdf, png


# ---------------------------------------------------------------- servers and fixtures


def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    """An nx-27017 server in this process, and a pymongo client to it."""
    client, stop = embedded_mongo(tmp_path_factory.mktemp("nx27017"))
    yield client
    stop()


@pytest.fixture
def redis_client(servers):
    client = redis.Redis.from_url(servers.redis_url)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client):
    """Redis keys of one test, apart from other tests and from anything else on that Redis."""
    ns = f"mptest-{uuid.uuid4().hex[:10]}"
    yield ns
    for key in redis_client.scan_iter(match=f"{ns}:*"):
        redis_client.delete(key)


class Digests:
    """The message digests chat wrote through the notification service, read from its delivery rows."""

    def __init__(self, svc):
        self.svc = svc

    def rows(self, user: Caller, channel: Channel = Channel.IN_APP) -> list[Notification]:
        with self.svc.db.tenant_session(user.tenant_id) as s:
            return list(s.exec(select(Notification).where(
                Notification.user_id == user.id, Notification.channel == channel,
                Notification.event == "messages_digest").order_by(Notification.id)).all())

    def to(self, user: Caller) -> list[tuple[str, str]]:
        """(title, body) of each in-app digest to `user`, oldest first."""
        return [(n.subject, n.body) for n in self.rows(user)]


def add_user(svc, tenant, email: str, role: Role, name: str) -> Caller:
    with svc.db.tenant_session(tenant.id) as s:
        user = User(email=email, password_hash="not-a-hash", role=role)
        s.add(user)
        s.flush()
        s.add(Profile(user_id=user.id, full_name=name))
        return Caller(role=role, id=user.id, tenant_id=tenant.id, email=email, name=name)


def add_request(svc, tenant, client: Caller, title: str = "Fix a leaking kitchen tap") -> int:
    with svc.db.tenant_session(tenant.id) as s:
        category = s.exec(select(Category)).first()
        if category is None:
            category = Category(slug="plumbing", name="Plumbing")
            s.add(category)
            s.flush()
        request = ServiceRequest(client_id=client.id, category_id=category.id, title=title,
                                 description="It drips all night.", city="Austin", currency="USD",
                                 expires_at=utcnow() + timedelta(days=30))
        s.add(request)
        s.flush()
        return request.id


class Env:
    """One test's world: two tenants, their people, a request, and the services."""

    def __init__(self, svc, mongo, presence, objects_root):
        self.svc = svc
        self.mongo = mongo
        self.presence = presence
        self.objects_root = objects_root
        self.database = f"chat_{uuid.uuid4().hex[:10]}"  # ids restart every test: keep histories apart
        self.store = MongoMessageStore(mongo, self.database)
        self.store.ensure_indexes()
        self.notes = Digests(svc)
        self.chat = self.make_chat()
        demo, acme = svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")
        self.t, self.acme = demo, acme
        self.client = add_user(svc, demo, "client@example.com", Role.CLIENT, "Carla Client")
        self.pro = add_user(svc, demo, "pro@example.com", Role.PROFESSIONAL, "Pedro Pro")
        self.pro2 = add_user(svc, demo, "pro2@example.com", Role.PROFESSIONAL, "Paula Pro")
        self.stranger = add_user(svc, demo, "stranger@example.com", Role.CLIENT, "Sam Stranger")
        self.admin = add_user(svc, demo, "admin@example.com", Role.ADMIN, "Dana Admin")
        self.admin2 = add_user(svc, demo, "admin2@example.com", Role.ADMIN, "Drew Admin")
        self.acme_client = add_user(svc, acme, "client@acme.example", Role.CLIENT, "Ada Acme")
        self.acme_pro = add_user(svc, acme, "pro@acme.example", Role.PROFESSIONAL, "Abe Acme")
        self.request_id = add_request(svc, demo, self.client)
        self.acme_request_id = add_request(svc, acme, self.acme_client, title="Paint a fence")

    def make_chat(self, *, store=None, presence=None, **options) -> ChatService:
        return ChatService(self.svc.db, store or self.store, presence or self.presence, self.svc.store,
                           self.svc.notifications, self.svc.jobs, **options)

    def job(self) -> int:
        return self.chat.ensure_job_conversation(self.t, self.client.id, self.pro.id, self.request_id)

    def raw(self, conversation_id: int, tenant_id: int | None = None) -> list[dict]:
        """What the messages collection holds for a conversation, read around the service."""
        query = {"conversation_id": conversation_id, "tenant_id": tenant_id or self.t.id}
        return list(self.mongo[self.database]["messages"].find(query))

    def chat_files(self, tenant_id: int | None = None) -> list:
        root = self.objects_root / f"t{tenant_id or self.t.id}" / "chat"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

    def last_message_at(self, conversation_id: int):
        with self.svc.db.tenant_session(self.t.id) as s:
            return s.get(Conversation, conversation_id).last_message_at


def build_env(pg_url, tmp_path, mongo, presence) -> Env:
    svc = make_services(pg_url, tmp_path)
    _truncate(svc)
    with svc.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo"))
        s.add(Tenant(slug="acme", name="Acme"))
    return Env(svc, mongo, presence, tmp_path / "objects")


@pytest.fixture
def env(pg_url, tmp_path, mongo, redis_client, namespace):
    e = build_env(pg_url, tmp_path, mongo, RedisPresence(redis_client, namespace=namespace))
    yield e
    e.svc.close()


@pytest.fixture(params=["redis", "local"])
def any_env(request, pg_url, tmp_path, mongo):
    """The same behaviour with Redis presence and with the in-process stand-in."""
    if request.param == "redis":
        presence = RedisPresence(request.getfixturevalue("redis_client"),
                                 namespace=request.getfixturevalue("namespace"))
    else:
        presence = LocalPresence()
    e = build_env(pg_url, tmp_path, mongo, presence)
    yield e
    e.svc.close()


FAKE_PNG = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200  # a Windows executable


# ---------------------------------------------------------------- conversations


def test_job_conversation_is_created_once_and_carried_over_to_the_order(env):
    first = env.job()
    assert env.job() == first  # idempotent: a second quote, a retry
    other = env.chat.ensure_job_conversation(env.t, env.client.id, env.pro2.id, env.request_id)
    assert other != first
    with env.svc.db.tenant_session(env.t.id) as s:
        rows = s.exec(select(Conversation).where(Conversation.request_id == env.request_id)).all()
        assert len(rows) == 2 and {r.kind for r in rows} == {ConversationKind.JOB}

    with pytest.raises(NotFound):  # the request is not that client's
        env.chat.ensure_job_conversation(env.t, env.stranger.id, env.pro.id, env.request_id)
    with pytest.raises(NotFound):  # another tenant's request
        env.chat.ensure_job_conversation(env.t, env.acme_client.id, env.pro.id, env.acme_request_id)

    client_rows = env.chat.conversations(env.t, env.client)
    assert {r.id for r in client_rows} == {first, other}
    assert {r.other_name for r in client_rows} == {"Pedro Pro", "Paula Pro"}
    assert all(r.title == "Fix a leaking kitchen tap" and r.request_id == env.request_id for r in client_rows)
    pro_rows = env.chat.conversations(env.t, env.pro)
    assert [(r.id, r.other_id, r.other_name) for r in pro_rows] == [(first, env.client.id, "Carla Client")]

    with env.svc.db.tenant_session(env.t.id) as s:
        order = Order(client_id=env.client.id, pro_id=env.pro.id, request_id=env.request_id,
                      title="Fix a leaking kitchen tap", price_minor=9000, currency="USD", platform_fee_minor=900,
                      state=OrderState.ACCEPTED)
        s.add(order)
        s.flush()
        order_id = order.id
    assert env.chat.attach_order(env.t, env.request_id, order_id) == first
    assert env.chat.attach_order(env.t, env.request_id, order_id) == first  # idempotent
    assert env.chat.conversation(env.t, env.client, first).order_id == order_id
    assert env.chat.conversation_for_order(env.t, env.pro, order_id) == first
    assert env.chat.conversation_for_order(env.t, env.pro2, order_id) is None
    assert env.chat.conversation(env.t, env.pro2, other).order_id is None  # the other pro's stays on the request


def test_support_conversation_one_per_user_with_the_tenants_admins(env):
    support = env.chat.support_conversation(env.t, env.client)
    assert env.chat.support_conversation(env.t, env.client) == support
    assert env.chat.support_conversation(env.t, env.pro) != support
    assert set(env.chat.participants(env.t, support)) == {env.client.id, env.admin.id, env.admin2.id}
    with pytest.raises(PermissionDenied):
        env.chat.support_conversation(env.t, env.admin)

    env.chat.send(env.t, env.client, support, "I can't upload my portfolio.")
    reply = env.chat.send(env.t, env.admin, support, "Which file type is it?")
    assert reply.sender_name == "Dana Admin"
    messages, _ = env.chat.history(env.t, env.admin2, support)  # any admin of the tenant reads it
    assert [m.body for m in messages] == ["I can't upload my portfolio.", "Which file type is it?"]

    [row] = env.chat.conversations(env.t, env.client)
    assert (row.kind, row.title, row.other_id, row.other_name) == ("support", "Support", None, "Demo support")
    admin_rows = env.chat.conversations(env.t, env.admin2)
    assert {r.title for r in admin_rows} == {"Support: Carla Client", "Support: Pedro Pro"}

    job = env.job()  # admins are not participants of job conversations
    with pytest.raises(NotFound):
        env.chat.history(env.t, env.admin, job)
    with pytest.raises(NotFound):  # nor of another user's support conversation: only admins and its owner
        env.chat.history(env.t, env.stranger, support)


def test_only_participants_read_and_write(env):
    job = env.job()
    env.chat.send(env.t, env.client, job, "Can you come on Tuesday?")
    for actor, tenant in ((env.stranger, env.t), (env.pro2, env.t), (env.acme_client, env.acme)):
        with pytest.raises(NotFound):
            env.chat.history(tenant, actor, job)
        with pytest.raises(NotFound):
            env.chat.send(tenant, actor, job, "let me in")
        with pytest.raises(NotFound):
            env.chat.mark_read(tenant, actor, job)
        with pytest.raises(NotFound):
            env.chat.typing(tenant, actor, job)
    with pytest.raises(PermissionDenied):  # an acme session presented on the demo marketplace
        env.chat.history(env.t, env.acme_client, job)
    with pytest.raises(PermissionDenied):
        env.chat.send(env.t, None, job, "anonymous")
    with pytest.raises(NotFound):
        env.chat.history(env.t, env.client, "not-a-number")
    assert len(env.raw(job)) == 1  # nothing was written by the refused calls


def test_other_tenants_messages_never_show_even_with_the_same_conversation_number(env):
    job = env.job()
    env.chat.send(env.t, env.client, job, "demo message")
    # A document of tenant acme filed under the same conversation number (a stale copy, a bug elsewhere):
    env.mongo[env.database]["messages"].insert_one({
        "tenant_id": env.acme.id, "conversation_id": job, "sender_id": env.acme_client.id,
        "body": "acme secret", "attachments": [], "created_at": utcnow()})
    messages, has_more = env.chat.history(env.t, env.pro, job)
    assert [m.body for m in messages] == ["demo message"] and not has_more
    assert [r.unread for r in env.chat.conversations(env.t, env.pro)] == [1]
    acme_message_id = env.raw(job, tenant_id=env.acme.id)[0]["_id"]
    with pytest.raises(NotFound):  # paging from the other tenant's message id finds nothing either
        env.chat.history(env.t, env.pro, job, before_id=str(acme_message_id))

    acme_job = env.chat.ensure_job_conversation(env.acme, env.acme_client.id, env.acme_pro.id,
                                                env.acme_request_id)
    env.chat.send(env.acme, env.acme_pro, acme_job, "acme hello")
    acme_messages, _ = env.chat.history(env.acme, env.acme_client, acme_job)
    assert [m.body for m in acme_messages] == ["acme hello"]


# ---------------------------------------------------------------- messages


def test_send_history_and_paging(env):
    chat = env.make_chat(flood_limit=1000)  # 55 messages in a second is the point here, not flood control
    job = env.job()
    sent = [chat.send(env.t, env.client if i % 2 == 0 else env.pro, job, f"message {i}") for i in range(55)]
    assert sent[0].mine and sent[0].sender_name == "Carla Client" and sent[0].conversation_id == job

    latest, has_more = chat.history(env.t, env.pro, job)
    assert [m.body for m in latest] == [f"message {i}" for i in range(5, 55)]
    assert has_more
    assert [m.id for m in latest] == [m.id for m in sent[5:]]
    assert not latest[-1].mine and latest[-2].mine  # seen by the pro: 54 is the client's, 53 the pro's own
    older, has_more = chat.history(env.t, env.pro, job, before_id=latest[0].id)
    assert [m.body for m in older] == [f"message {i}" for i in range(5)]
    assert not has_more
    page, has_more = chat.history(env.t, env.pro, job, before_id=latest[10].id, limit=3)
    assert [m.body for m in page] == ["message 12", "message 13", "message 14"] and has_more

    with pytest.raises(NotFound):
        chat.history(env.t, env.pro, job, before_id="not-an-object-id")
    other = env.chat.ensure_job_conversation(env.t, env.client.id, env.pro2.id, env.request_id)
    with pytest.raises(NotFound):  # a message id of another conversation
        chat.history(env.t, env.client, other, before_id=latest[0].id)


def test_unread_counts_and_mark_read(env):
    job = env.job()
    other = env.chat.ensure_job_conversation(env.t, env.client.id, env.pro2.id, env.request_id)
    for text in ("Hello", "Are you free Tuesday?", "It's urgent"):
        env.chat.send(env.t, env.client, job, text)
    unread = lambda actor: {r.id: r.unread for r in env.chat.conversations(env.t, actor)}  # noqa: E731
    assert unread(env.pro) == {job: 3}
    assert unread(env.client) == {job: 0, other: 0}  # own messages are never unread
    env.chat.mark_read(env.t, env.pro, job)
    assert unread(env.pro) == {job: 0}
    env.chat.send(env.t, env.client, job, "Still there?")
    assert unread(env.pro) == {job: 1}
    env.chat.send(env.t, env.pro, job, "Yes, Tuesday works.")  # replying counts as reading
    assert unread(env.pro) == {job: 0}
    assert unread(env.client) == {job: 1, other: 0}

    env.chat.send(env.t, env.pro2, other, "I can do it cheaper.")
    rows = env.chat.conversations(env.t, env.client)
    assert [r.id for r in rows] == [other, job]  # newest activity first
    assert rows[0].last_message_at > rows[1].last_message_at


def test_empty_and_too_long_messages_are_refused_and_nothing_is_stored(env):
    job = env.job()
    for body in ("", "   \n\t ", "x" * 4001, " " + "y" * 4001 + " "):
        with pytest.raises(ValidationFailed) as exc:
            env.chat.send(env.t, env.client, job, body)
        assert set(exc.value.errors) == {"body"}
    assert env.raw(job) == [] and env.last_message_at(job) is None
    exactly = env.chat.send(env.t, env.client, job, "  " + "z" * 4000 + "  ")
    assert exactly.body == "z" * 4000  # stripped, then counted


def test_flood_control_refuses_the_21st_message_in_ten_seconds(any_env):
    env = any_env
    job = env.job()
    for i in range(20):
        env.chat.send(env.t, env.client, job, f"spam {i}")
    with pytest.raises(Throttled) as exc:
        env.chat.send(env.t, env.client, job, "one more")
    assert isinstance(exc.value, DomainError) and "too quickly" in exc.value.message
    assert len(env.raw(job)) == 20
    env.chat.send(env.t, env.pro, job, "the other side is not throttled")


def test_attachments_images_and_pdfs_only_checked_by_content(env):
    job = env.job()
    picture = png()
    message = env.chat.send(env.t, env.client, job, "Here is the leak",
                            [("../../leak photo.PNG", picture), ("quote.pdf", pdf())])
    image, document = message.attachments
    stored_image, stored_type = env.svc.store.get(image.key)  # re-encoded from the pixels: no metadata survives
    assert (image.is_image, image.content_type, image.size, image.name) == (True, "image/png", len(stored_image),
                                                                            "leak photo.PNG")
    assert image.key.startswith(f"t{env.t.id}/chat/{job}/") and image.key.endswith("-leak-photo.png")
    assert image.url.startswith(f"/api/v1/files/{image.key}?expires=")  # private: a short-lived signed URL
    assert stored_type == "image/png" and Image.open(io.BytesIO(stored_image)).tobytes() == \
        Image.open(io.BytesIO(picture)).tobytes()  # the same pixels
    assert (document.is_image, document.content_type) == (False, "application/pdf")
    assert env.svc.store.get(document.key)[1] == "application/pdf"
    [stored] = env.raw(job)
    assert [a["key"] for a in stored["attachments"]] == [image.key, document.key]
    history, _ = env.chat.history(env.t, env.pro, job)
    assert history[0].attachments == message.attachments
    only_file = env.chat.send(env.t, env.pro, job, "", [("photo.jpg", png(color=(0, 0, 255)))])
    assert only_file.body == "" and only_file.attachments[0].content_type == "image/png"  # the name lied: png
    files_before = sorted(env.chat_files())

    refused = [
        [("cat.png", FAKE_PNG)],  # an executable renamed .png
        [("ok.png", png()), ("cat.png", FAKE_PNG)],  # one bad file refuses the whole message
        [("invoice.pdf", b"%PDF-1.7\n<html><script>alert(1)</script></html>")],  # the magic alone is not enough
        [("page.html", b"<html><script>alert(1)</script></html>")],
        [("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024))],  # over 10 MB
        [(f"p{i}.png", png()) for i in range(6)],  # over 5 files
    ]
    for files in refused:
        with pytest.raises(ValidationFailed) as exc:
            env.chat.send(env.t, env.client, job, "see attached", files)
        assert set(exc.value.errors) == {"attachments"}
    assert len(env.raw(job)) == 2  # no message from any refused attempt
    assert sorted(env.chat_files()) == files_before  # and no file


def test_pdf_check_is_structural():
    good = pdf()
    assert looks_like_pdf(good)
    assert not looks_like_pdf(good[: len(good) // 2])  # truncated
    assert not looks_like_pdf(b"%PDF-1.4\n%%EOF")
    assert not looks_like_pdf(good.replace(b"startxref", b"startxxxx"))


def test_markup_is_stored_and_returned_verbatim(env):
    job = env.job()
    body = "<script>alert(1)</script> & <b>bold</b> {{ state }}"
    sent = env.chat.send(env.t, env.client, job, body)
    assert sent.body == body
    assert env.raw(job)[0]["body"] == body
    history, _ = env.chat.history(env.t, env.pro, job)
    assert history[0].body == body
    [(_, note)] = env.notes.to(env.pro)
    assert body in note  # the in-app text carries the raw text too; the page renders it as text
    [email] = env.notes.rows(env.pro, Channel.EMAIL)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html_body and "<script>" not in email.html_body


# ---------------------------------------------------------------- presence


def test_presence_and_typing_expire_in_redis(env, redis_client, namespace):
    presence = RedisPresence(redis_client, namespace=namespace, typing_ttl_s=1)
    chat = env.make_chat(presence=presence)
    job = env.job()
    assert chat.online(env.t, [env.client.id, env.pro.id]) == set()
    chat.touch(env.t, env.pro)
    assert chat.online(env.t, [env.client.id, env.pro.id]) == {env.pro.id}
    assert chat.online(env.acme, [env.pro.id]) == set()  # presence is per tenant
    key = f"{namespace}:presence:{env.t.id}:{env.pro.id}"
    assert 25 <= redis_client.ttl(key) <= 30

    chat.typing(env.t, env.pro, job)
    assert chat.typing_names(env.t, env.client, job) == ["Pedro Pro"]
    assert chat.typing_names(env.t, env.pro, job) == []  # not yourself
    assert 0 < redis_client.ttl(f"{namespace}:typing:{env.t.id}:{job}") <= 2
    time.sleep(1.3)
    assert chat.typing_names(env.t, env.client, job) == []

    chat.send(env.t, env.client, job, "hi")
    assert redis_client.exists(f"{namespace}:flood:{env.t.id}:{env.client.id}")
    assert 0 < redis_client.ttl(f"{namespace}:flood:{env.t.id}:{env.client.id}") <= 10


def test_local_presence_expires_on_its_clock():
    now = [1000.0]
    presence = LocalPresence(clock=lambda: now[0])
    presence.touch(1, 7)
    presence.set_typing(1, 3, 7)
    assert presence.online(1, [7, 8]) == {7} and presence.online(2, [7]) == set()
    assert presence.typing(1, 3) == {7}
    now[0] += 6
    assert presence.typing(1, 3) == set() and presence.online(1, [7]) == {7}
    now[0] += 25
    assert presence.online(1, [7]) == set()
    assert all(presence.allow_message(1, 7, limit=3, window_s=10) for _ in range(3))
    assert not presence.allow_message(1, 7, limit=3, window_s=10)
    now[0] += 10
    assert presence.allow_message(1, 7, limit=3, window_s=10)


def test_redis_down_messages_still_send_and_presence_degrades(env, caplog):
    presence = RedisPresence.from_url(f"redis://127.0.0.1:{closed_port()}/0", backoff_s=0)
    started = time.monotonic()
    chat = env.make_chat(presence=presence)
    job = env.job()
    chat.touch(env.t, env.pro)  # no error
    chat.typing(env.t, env.pro, job)
    sent = chat.send(env.t, env.client, job, "Redis is down but this arrives")
    history, _ = chat.history(env.t, env.pro, job)
    assert [m.id for m in history] == [sent.id] and len(env.raw(job)) == 1
    assert chat.online(env.t, [env.client.id, env.pro.id]) == set()
    assert chat.typing_names(env.t, env.client, job) == []
    assert presence.allow_message(env.t.id, env.client.id) is True
    assert env.notes.to(env.pro)  # nobody looks online, so the recipient is notified
    assert any("Redis unavailable" in r.getMessage() for r in caplog.records)
    assert time.monotonic() - started < 5  # no retry storms: each Redis call fails fast


def test_redis_outage_backoff_skips_redis_for_a_while():
    calls = []

    class Flaky:
        def set(self, *args, **kwargs):
            calls.append("set")
            raise redis.ConnectionError("down")

    presence = RedisPresence(Flaky(), backoff_s=60)  # type: ignore[arg-type]
    presence.touch(1, 1)
    presence.touch(1, 2)
    assert calls == ["set"]  # the second call did not wait on a dead server


def test_message_store_down_nothing_is_sent_and_no_file_is_left(env):
    dead_client = make_client(f"mongodb://127.0.0.1:{closed_port()}/?directConnection=true",
                              serverSelectionTimeoutMS=300, connectTimeoutMS=300)
    try:
        dead = MongoMessageStore(dead_client, env.database)
        chat = env.make_chat(store=dead)
        job = env.job()
        env.chat.send(env.t, env.client, job, "sent while the store was up")
        before = env.last_message_at(job)
        with pytest.raises(StoreUnavailable) as exc:
            chat.send(env.t, env.pro, job, "lost?", [("photo.png", png())])
        assert exc.value.message == "Messages can't be saved right now. Please try again."
        assert env.last_message_at(job) == before
        assert env.chat_files() == []
        assert len(env.raw(job)) == 1
        assert env.notes.to(env.client) == []  # nobody is told about a message that does not exist
        with pytest.raises(StoreUnavailable):
            chat.history(env.t, env.pro, job)
        assert [r.unread for r in chat.conversations(env.t, env.pro)] == [0]  # the list still shows
        assert dead.ping() is False and env.store.ping() is True
    finally:
        dead_client.close()


class ChatClock:
    """Chat's clock, one second further at each reading, from a minute into a digest period; `advance` jumps."""

    def __init__(self):
        self.now = datetime(2030, 1, 7, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def chat_clock(monkeypatch):
    clock = ChatClock()
    monkeypatch.setattr(chat_service, "utcnow", clock)
    return clock


def test_offline_recipients_get_one_digest_per_quiet_period_online_ones_none(any_env, chat_clock):
    env = any_env
    job = env.job()
    env.chat.send(env.t, env.client, job, "Are you there?")
    assert env.notes.to(env.pro) == [("New message from Carla Client", 'Fix a leaking kitchen tap: "Are you there?"')]
    env.chat.send(env.t, env.client, job, "Hello?")  # same quiet period: the digest is written already
    assert len(env.notes.to(env.pro)) == 1 and len(env.notes.rows(env.pro, Channel.EMAIL)) == 1
    env.chat.touch(env.t, env.pro)
    env.chat.send(env.t, env.client, job, "Saw you come online")
    assert len(env.notes.to(env.pro)) == 1
    assert env.notes.to(env.client) == []  # never the sender

    # read, then away again: the next unseen message, in a later period, starts a new digest
    env.chat.mark_read(env.t, env.pro, job)
    chat_clock.advance(timedelta(minutes=15))
    other = env.make_chat(presence=LocalPresence())  # nobody online in this one
    other.send(env.t, env.client, job, "Are you coming tomorrow?")
    other.send(env.t, env.client, job, "At nine?")
    assert env.notes.to(env.pro)[1:] == [("New message from Carla Client",
                                          'Fix a leaking kitchen tap: "Are you coming tomorrow?"')]

    # Support: the user and every admin of the tenant, minus the sender, minus whoever is online.
    support = env.chat.support_conversation(env.t, env.stranger)
    env.chat.touch(env.t, env.admin2)
    env.chat.send(env.t, env.admin2, support, "", [("steps.png", png())])
    assert env.notes.to(env.stranger) == [("New message from Drew Admin", 'Demo support: "Sent steps.png"')]
    # the other admin hears about it too
    assert env.notes.to(env.admin) == [("New message from Drew Admin", 'Support: Sam Stranger: "Sent steps.png"')]
    assert env.notes.to(env.admin2) == []
    env.chat.send(env.t, env.stranger, support, "Thanks, that worked")
    assert len(env.notes.to(env.admin)) == 1  # its first unseen message is the file's: same period, same digest
    assert env.notes.to(env.admin2) == []  # online
    assert len(env.notes.to(env.stranger)) == 1  # the sender is never notified (and is online now)


def test_message_indexes_exist(env):
    env.store.ensure_indexes()  # idempotent
    keys = [list(ix["key"].keys()) for ix in env.mongo[env.database]["messages"].list_indexes()]
    assert ["tenant_id", "conversation_id", "created_at"] in keys


# ---------------------------------------------------------------- the embedded default


def test_embedded_default_on_sqlite_survives_a_restart(tmp_path):
    """`make run` with nothing configured: SQLite, nx-27017 in-process, LocalPresence."""
    svc = make_services(None, tmp_path)
    try:
        with svc.db.platform_session() as s:
            s.add(Tenant(slug="demo", name="Demo"))
        demo = svc.tenants.by_slug("demo")
        client = add_user(svc, demo, "c@example.com", Role.CLIENT, "Carla Client")
        pro = add_user(svc, demo, "p@example.com", Role.PROFESSIONAL, "Pedro Pro")
        request_id = add_request(svc, demo, client)

        mongo_client, stop = embedded_mongo(tmp_path / "chat")
        store = MongoMessageStore(mongo_client)
        store.ensure_indexes()
        chat = ChatService(svc.db, store, LocalPresence(), svc.store)
        job = chat.ensure_job_conversation(demo, client.id, pro.id, request_id)
        assert chat.ensure_job_conversation(demo, client.id, pro.id, request_id) == job
        sent = chat.send(demo, client, job, "hello from SQLite", [("a.png", png())])
        chat.mark_read(demo, pro, job)
        chat.mark_read(demo, pro, job)  # the upsert path on SQLite
        support = chat.support_conversation(demo, pro)
        assert chat.support_conversation(demo, pro) == support
        stop()

        mongo_client, stop = embedded_mongo(tmp_path / "chat")
        try:
            chat = ChatService(svc.db, MongoMessageStore(mongo_client), LocalPresence(), svc.store)
            history, has_more = chat.history(demo, pro, job)
            assert [(m.id, m.body, m.attachments[0].is_image) for m in history] == [(sent.id, sent.body, True)]
            assert not has_more
            assert {r.id: r.unread for r in chat.conversations(demo, pro)} == {job: 0, support: 0}
            with pytest.raises(NotFound):
                chat.history(demo, add_user(svc, demo, "x@example.com", Role.CLIENT, "X"), job)
        finally:
            stop()
        assert (tmp_path / "chat" / "marketplace.db").exists()
    finally:
        svc.close()


def test_conversation_rows_are_behind_row_level_security(env):
    """Raw SQL that forgets the tenant filter still sees only the bound tenant's conversations and read marks."""
    import sqlalchemy as sa

    job = env.job()
    env.chat.send(env.t, env.pro, job, "hello")
    env.chat.mark_read(env.t, env.client, job)
    with env.svc.db.tenant_session(env.acme.id) as s:
        assert s.execute(sa.text("SELECT count(*) FROM conversation")).scalar() == 0
        assert s.execute(sa.text("SELECT count(*) FROM conversation_read")).scalar() == 0
        assert s.execute(sa.text("UPDATE conversation SET order_id = NULL")).rowcount == 0
    with env.svc.db.tenant_session(env.t.id) as s:
        assert s.execute(sa.text("SELECT count(*) FROM conversation")).scalar() == 1
        assert s.execute(sa.text("SELECT count(*) FROM conversation_read")).scalar() == 2  # both have read
        flags = s.execute(sa.text("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                                  "WHERE relname IN ('conversation', 'conversation_read')")).all()
    assert sorted(flags) == [("conversation", True, True), ("conversation_read", True, True)]


def test_conversation_helpers_join_the_callers_transaction(env):
    """QuoteService.send_quote/accept_quote call these inside their own transaction: a rolled-back quote
    leaves no conversation behind."""
    from backend.chat.service import ensure_job_conversation

    with pytest.raises(RuntimeError):
        with env.svc.db.tenant_session(env.t.id) as s:
            assert ensure_job_conversation(s, env.t.id, client_id=env.client.id, pro_id=env.pro.id,
                                           request_id=env.request_id) > 0
            raise RuntimeError("the quote could not be saved")
    assert env.chat.conversations(env.t, env.client) == []
    with env.svc.db.tenant_session(env.t.id) as s:
        first = ensure_job_conversation(s, env.t.id, client_id=env.client.id, pro_id=env.pro.id,
                                        request_id=env.request_id)
        assert ensure_job_conversation(s, env.t.id, client_id=env.client.id, pro_id=env.pro.id,
                                       request_id=env.request_id) == first
    assert [r.id for r in env.chat.conversations(env.t, env.client)] == [first]
