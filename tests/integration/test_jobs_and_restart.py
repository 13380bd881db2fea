"""Real Redis + a real Celery worker process; sessions that outlive the process that made them."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import redis
from sqlmodel import select

from backend.config import PROJECT_ROOT, Settings
from backend.jobqueue import CeleryJobQueue, make_celery
from backend.notifications.models import Notification


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return env | {k: str(v) for k, v in extra.items()}


def test_redis_is_real(servers):
    client = redis.Redis.from_url(servers.redis_url)
    assert client.ping()
    client.set("mp:test:key", "1", ex=5)
    assert client.ttl("mp:test:key") > 0


def test_celery_worker_delivers_the_verification_email(pg_services, servers, tmp_path):
    svc, demo = pg_services
    worker_data = tmp_path / "worker"
    # development: the worker's email channel is the dev mailbox (elsewhere, with no provider, delivery fails)
    env = _env(DATABASE_URL=svc.settings.owner_database_url, REDIS_URL=servers.redis_url, DATA_DIR=worker_data,
               ENVIRONMENT="development")
    queue_name = f"mp-test-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backend.jobs", "worker", "--pool=solo", "--loglevel=warning",
         "-Q", queue_name, "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client_app = make_celery(Settings(redis_url=servers.redis_url))
        client_app.conf.task_default_queue = queue_name
        svc.accounts.jobs = CeleryJobQueue(client_app)
        svc.accounts.sign_up(demo, {"email": "w@example.com", "password": "pw-1234567890", "full_name": "W"})
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            with svc.db.tenant_session(demo.id) as s:
                note = s.exec(select(Notification)).one()
            status = note.status
            if status == "sent":
                break
            time.sleep(0.2)
        assert status == "sent", "the worker process delivered the message"
        assert note.attempts == 1
        delivered = list((worker_data / "outbox" / "new").iterdir())
        assert len(delivered) == 1 and "Confirm your email" in delivered[0].read_text()
        # the task is idempotent: delivering again sends nothing more
        assert svc.notifications.deliver(demo.id, note.id) == "already-sent"
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()


RESOLVE = """
import sys
from backend.bootstrap import services
svc = services()
actor = svc.accounts.resolve_session(svc.tenants.by_slug("demo"), sys.argv[1])
print(actor.email if actor else "NONE")
"""


def test_sessions_survive_a_backend_restart(pg_services, tmp_path):
    svc, demo = pg_services
    _, token = svc.accounts.sign_up(demo, {"email": "r@example.com", "password": "pw-1234567890", "full_name": "R"})
    svc.close()  # the process that issued the session lets go of everything
    out = subprocess.run([sys.executable, "-c", RESOLVE, token], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         env=_env(DATABASE_URL=svc.settings.owner_database_url, DATA_DIR=tmp_path / "p2"),
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "r@example.com", out.stderr
