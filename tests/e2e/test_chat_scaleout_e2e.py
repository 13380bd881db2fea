"""Scale-out: two app processes share Redis (REFLEX_REDIS_URL), PostgreSQL and one MongoDB-protocol
history store; a message sent through one process reaches a browser connected to the other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from playwright.sync_api import expect

from backend.config import PROJECT_ROOT
from tests.e2e.conftest import RunningApp, _free_port, logged_in, post_request, quote_as

COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", ".tools", ".web", ".states", "data", "__pycache__",
                                     ".pytest_cache", "bench")


@pytest.fixture(scope="module")
def two_backends(servers, tmp_path_factory):
    from backend.chat.adapters.mongo import embedded_mongo

    tmp = tmp_path_factory.mktemp("scaleout")
    db_name = f"mp_scale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url = servers.create_database(db_name)
    client, stop_mongo = embedded_mongo(tmp / "mongo")
    host, port = client.address
    redis_db = 9
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {
        "DATABASE_URL": db_url, "MONGODB_URL": f"mongodb://{host}:{port}/marketplace",
        "REDIS_URL": servers.redis_url.rsplit("/", 1)[0] + f"/{redis_db - 1}",
        "REFLEX_REDIS_URL": servers.redis_url.rsplit("/", 1)[0] + f"/{redis_db}",
        "ENVIRONMENT": "development", "REFLEX_TELEMETRY_ENABLED": "false"}  # the demo seed runs only there
    import redis

    redis.Redis.from_url(base_env["REFLEX_REDIS_URL"]).flushdb()
    subprocess.run([sys.executable, "-m", "backend.seed"], cwd=PROJECT_ROOT, check=True, capture_output=True,
                   env=base_env | {"DATA_DIR": str(tmp / "seed")})
    # each process runs from its own copy of the project: it builds its own frontend, and the session's
    # app (serving from the project's .web) is left alone
    apps = []
    for name in ("a", "b"):
        root = tmp / f"copy-{name}"
        shutil.copytree(PROJECT_ROOT, root, ignore=COPY_IGNORE)
        for link in (".venv", ".tools"):
            if (PROJECT_ROOT / link).exists():
                (root / link).symlink_to(PROJECT_ROOT / link)
        port_ = _free_port()
        env = base_env | {"DATA_DIR": str(tmp / f"data-{name}"), "PUBLIC_URL": f"http://localhost:{port_}"}
        running = RunningApp(env, port_, tmp / f"app-{name}.log", cwd=root)
        running.start()
        apps.append(running)
    yield apps
    for running in apps:
        running.stop()
    stop_mongo()
    servers.drop_database(db_name)


def test_a_message_sent_through_one_process_reaches_a_browser_on_the_other(new_context, two_backends):
    a, b = two_backends
    title = f"Scale-out tap {uuid.uuid4().hex[:6]}"
    client = new_context().new_page()
    logged_in(client, a, "alice@demo.example")
    post_request(client, a, title)

    pro = new_context().new_page()
    logged_in(pro, b, "diego@demo.example", home="/pro")
    quote_as(pro, b, title, "80", "Tomorrow at 10 works for me.")
    pro.goto(b.url("/pro/quotes"))
    pro.locator(".my-quote", has_text=title).locator(".quote-chat").click()
    expect(pro.locator("#chat-body")).to_be_visible()
    conversation_path = pro.url.split(str(b.port), 1)[1]

    client.goto(a.url(conversation_path))
    expect(client.locator("#chat-body")).to_be_visible()
    client.locator("#chat-body").fill("Sent through process A")
    client.locator("#chat-send").click()
    expect(pro.locator(".message-body", has_text="Sent through process A")).to_be_visible()
    pro.locator("#chat-body").fill("Answered through process B")
    pro.locator("#chat-send").click()
    expect(client.locator(".message-body", has_text="Answered through process B")).to_be_visible()
