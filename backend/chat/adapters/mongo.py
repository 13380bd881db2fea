"""Message history in MongoDB (production) or in an in-process nx-27017 server (embedded default).

Both run through the same `MongoMessageStore` and the same pymongo driver: the embedded default is a
MongoDB wire-protocol server backed by SQLite, not a second implementation of the store. One code path
means what `make run` exercises is what production runs (queries, sorting, error mapping), and the tests
speak the real wire protocol instead of a mock.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import PyMongoError

from backend.chat.ports import StoreUnavailable

log = logging.getLogger(__name__)

COLLECTION = "messages"
DEFAULT_DATABASE = "marketplace"
# Short timeouts: a chat message should fail fast with a clear error, not hang the page for 30 s
# (pymongo's default server selection timeout).
CLIENT_OPTIONS: dict[str, Any] = dict(serverSelectionTimeoutMS=2000, connectTimeoutMS=2000,
                                      socketTimeoutMS=5000, tz_aware=True, tzinfo=UTC)
_NEWEST_FIRST = [("created_at", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)]
_OLDEST_FIRST = [("created_at", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]


def make_client(url: str, **options: Any) -> pymongo.MongoClient:
    """A client for MONGODB_URL with the short timeouts above (overridable, e.g. by tests)."""
    return pymongo.MongoClient(url, **(CLIENT_OPTIONS | options))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    """Store document -> port document: string id, aware UTC datetime, no bson types."""
    out = {k: v for k, v in doc.items() if k != "_id"}
    out["id"] = str(doc["_id"])
    out["created_at"] = _aware(doc["created_at"])
    out["attachments"] = list(doc.get("attachments") or [])
    return out


def _oid(message_id: str) -> ObjectId | None:
    try:
        return ObjectId(message_id)
    except (InvalidId, TypeError):
        return None


class MongoMessageStore:
    def __init__(self, client: pymongo.MongoClient, database: str = DEFAULT_DATABASE):
        self.client = client
        self.messages = client[database][COLLECTION]

    @classmethod
    def from_url(cls, url: str, database: str | None = None, **options: Any) -> MongoMessageStore:
        client = make_client(url, **options)
        return cls(client, database or client.get_default_database(DEFAULT_DATABASE).name)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except PyMongoError as exc:
            # Connection trouble (ServerSelectionTimeoutError, AutoReconnect, ConnectionFailure) is the
            # usual cause; anything else the server refused is logged with its detail for operators.
            log.warning("message store: %s failed: %s", what, exc)
            raise StoreUnavailable() from exc

    def ensure_indexes(self) -> None:
        # Every read is "one tenant's conversation, newest first".
        self._call("create_index", lambda: self.messages.create_index(
            [("tenant_id", pymongo.ASCENDING), ("conversation_id", pymongo.ASCENDING),
             ("created_at", pymongo.DESCENDING)]))

    def insert(self, doc: dict[str, Any]) -> str:
        row = {k: v for k, v in doc.items() if k not in ("id", "_id")}  # never mutate the caller's dict
        result = self._call("insert", lambda: self.messages.insert_one(row))
        return str(result.inserted_id)

    def get(self, tenant_id: int, conversation_id: int, message_id: str) -> dict[str, Any] | None:
        oid = _oid(message_id)
        if oid is None:
            return None
        doc = self._call("find_one", lambda: self.messages.find_one(
            {"tenant_id": tenant_id, "conversation_id": conversation_id, "_id": oid}))
        return _out(doc) if doc else None

    def _newest(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        docs = self._call("find", lambda: list(self.messages.find(query).sort(_NEWEST_FIRST).limit(limit)))
        return [_out(d) for d in reversed(docs)]

    def latest(self, tenant_id: int, conversation_id: int, limit: int) -> list[dict[str, Any]]:
        return self._newest({"tenant_id": tenant_id, "conversation_id": conversation_id}, limit)

    def before(self, tenant_id: int, conversation_id: int, before_created_at: datetime, before_id: str,
               limit: int) -> list[dict[str, Any]]:
        oid = _oid(before_id)
        if oid is None:
            return []
        at = _aware(before_created_at)
        return self._newest({"tenant_id": tenant_id, "conversation_id": conversation_id,
                             "$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": oid}}]},
                            limit)

    def count_after(self, tenant_id: int, conversation_id: int, after: datetime | None,
                    exclude_sender: int) -> int:
        query: dict[str, Any] = {"tenant_id": tenant_id, "conversation_id": conversation_id,
                                 "sender_id": {"$ne": exclude_sender}}
        if after is not None:
            query["created_at"] = {"$gt": _aware(after)}
        return self._call("count", lambda: self.messages.count_documents(query))

    def first_after(self, tenant_id: int, conversation_id: int, after: datetime | None,
                    exclude_sender: int) -> dict[str, Any] | None:
        query: dict[str, Any] = {"tenant_id": tenant_id, "conversation_id": conversation_id,
                                 "sender_id": {"$ne": exclude_sender}}
        if after is not None:
            query["created_at"] = {"$gt": _aware(after)}
        docs = self._call("find", lambda: list(self.messages.find(query).sort(_OLDEST_FIRST).limit(1)))
        return _out(docs[0]) if docs else None

    def delete(self, tenant_id: int, message_id: str) -> None:
        oid = _oid(message_id)
        if oid is not None:
            self._call("delete", lambda: self.messages.delete_one({"tenant_id": tenant_id, "_id": oid}))

    def ping(self) -> bool:
        try:
            self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False


# ---------------------------------------------------------------- embedded default


def embedded_mongo(path: Path) -> tuple[pymongo.MongoClient, Callable[[], None]]:
    """Start an nx-27017 server (MongoDB wire protocol on SQLite) inside this process and connect to it.

    Data: one SQLite file per logical database under `path` (nx-27017's "files" mode), e.g.
    `path/marketplace.db`. Listens on 127.0.0.1 only, on a port the OS picks. Returns the client and a
    function that stops the server and closes its files.

    nx-27017's own `run_server_threaded(host, port, handler)` binds the port itself and loops forever,
    so a caller must guess a free port (racy) and cannot stop it. This binds port 0 and runs the same
    per-connection handler (`handle_client_threaded`) from an accept loop that can be stopped.
    """
    from nx_27017.handler import NeoSQLiteHandler
    from nx_27017.server import handle_client_threaded

    path.mkdir(parents=True, exist_ok=True)
    # neosqlite logs a WARNING each time a count runs through its Python fallback instead of SQL;
    # that is an implementation detail of the stand-in, not something an operator can act on.
    for name in ("neosqlite.collection.temporary_table_aggregation.manager",
                 "neosqlite.collection.query_engine"):
        logging.getLogger(name).setLevel(logging.ERROR)

    handler = NeoSQLiteHandler(data_dir=str(path))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.2)  # lets the accept loop notice `stop`
    port = listener.getsockname()[1]
    stopping = threading.Event()

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(None)
            threading.Thread(target=handle_client_threaded, args=(conn, handler), daemon=True,
                             name="nx-27017-client").start()

    thread = threading.Thread(target=accept_loop, daemon=True, name=f"nx-27017:{port}")
    thread.start()
    client = make_client(f"mongodb://127.0.0.1:{port}/?directConnection=true")

    def stop() -> None:
        client.close()
        stopping.set()
        thread.join(timeout=5)
        listener.close()
        handler.close_all()

    return client, stop
