"""One event fanned out to many recipients, delivered by Celery workers on Redis through the real SendGrid adapter to
the local fake SendGrid (tests/fakes/sendgrid_server.py), on a throwaway PostgreSQL database.

- setup: one marketplace and RECIPIENTS professionals (bulk rows: user and profile), each opted in to new leads by
  email (the catalogue sends them in-app only by default);
- the event: a new lead (`Event.LEAD_NEW`) for all of them, written by `NotificationService.notify()` in one
  transaction (an email row and an in-app row per professional), then one Celery task per email row (enqueue);
- delivery: WORKERS Celery worker processes (`celery -A backend.jobs worker`), started before the event, each task
  locking its row, rendering nothing (the row holds the message) and handing it to SendGrid's SDK;
- measured: enqueue time (notify + commit + sending the tasks), deliveries/s (first enqueue to last mail received
  by the provider), p50/p95/p99 from the event's commit to the provider receiving each mail, and the checks: every
  row SENT, the provider received each reference exactly once (0 lost, 0 duplicated), memory of the workers;
- baseline in the same run: the same event for BASELINE recipients delivered inline (InlineJobQueue: one process,
  one delivery after the other, what `make run` does without Redis).

NOTIFY_BENCH_RECIPIENTS=N for a quicker run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlmodel import select

from backend.accounts.models import User
from backend.bootstrap import build_services
from backend.config import PROJECT_ROOT, Settings
from backend.db import utcnow
from backend.identity import Role
from backend.jobqueue import CeleryJobQueue, InlineJobQueue, make_celery
from backend.notifications.catalogue import Event, Group, spec
from backend.notifications.models import Channel, DeliveryStatus, Notification, NotificationPreference
from backend.profiles.models import Profile
from backend.tenancy.models import Tenant
from bench.login import throwaway_database
from bench.orders import BrokenInvariant
from bench.stats import Table, percentile, tree_memory
from tests.fakes.sendgrid_server import FakeSendGrid

RECIPIENTS = int(os.environ.get("NOTIFY_BENCH_RECIPIENTS", "10000"))
BASELINE = min(1_000, RECIPIENTS)  # inline deliveries, one after the other
WORKERS = 4  # Celery worker processes (prefork)
REDIS_URL = os.environ.get("NOTIFY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CHUNK = 2_000
DRAIN_TIMEOUT_S = 600
HEADERS = ["configuration", "recipients", "enqueue s", "deliveries/s", "event→provider p50 ms", "p95 ms", "p99 ms",
           "lost", "duplicated", "throughput ratio to baseline"]


class TimedSendGrid(FakeSendGrid):
    """The fake SendGrid, noting when each accepted mail arrived (this process's clock: the workers' requests and the
    event's commit are timed on the same machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[str, float]] = []  # (reference, time.time())
        self._arrival_lock = threading.Lock()

    def _mail_send(self, headers, raw):
        result = super()._mail_send(headers, raw)
        if result[0] == 202:
            reference = json.loads(raw).get("custom_args", {}).get("ref", "")
            with self._arrival_lock:
                self.arrivals.append((reference, time.time()))
        return result


def _settings(url: str, data_dir: Path, sendgrid: FakeSendGrid, redis_url: str | None) -> Settings:
    return Settings(_env_file=None, environment="development", database_url=url, data_dir=data_dir,
                    redis_url=redis_url, sendgrid_api_key="SG.bench-key", sendgrid_api_host=sendgrid.url)


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "SENDGRID_", "TWILIO_"))}
    env.update(ENVIRONMENT="development", DATABASE_URL=settings.database_url or "", DATA_DIR=str(settings.data_dir),
               REDIS_URL=settings.redis_url or "", SENDGRID_API_KEY="SG.bench-key",
               SENDGRID_API_HOST=settings.sendgrid_api_host or "", PYTHONPATH=str(PROJECT_ROOT))
    return env


def _tenant_and_pros(svc, slug: str, n: int):
    with svc.db.platform_session() as session:
        session.add(Tenant(slug=slug, name=f"Bench {slug}", payment_provider="demo"))
    tenant = svc.tenants.by_slug(slug)
    ids: list[int] = []
    now = utcnow()
    for start in range(0, n, CHUNK):
        rows = [{"tenant_id": tenant.id, "email": f"pro{i}@{slug}.example", "password_hash": "-",
                 "role": Role.PROFESSIONAL, "email_verified_at": now} for i in range(start, min(start + CHUNK, n))]
        with svc.db.tenant_session(tenant.id) as session:
            new = session.execute(sa.insert(User).returning(User.id, sort_by_parameter_order=True), rows
                                  ).scalars().all()
            session.execute(sa.insert(Profile), [{"tenant_id": tenant.id, "user_id": user_id,
                                                  "full_name": f"Pro {user_id}"} for user_id in new])
            session.execute(sa.insert(NotificationPreference), [
                {"tenant_id": tenant.id, "user_id": user_id, "group": Group.NEW_LEADS.value,
                 "channel": Channel.EMAIL.value, "enabled": True, "updated_at": now} for user_id in new])
        ids += new
    return tenant, ids


def _event(svc, tenant, user_ids: list[int], key: str) -> tuple[list[int], float]:
    """notify() in one transaction; (the email row ids, the commit time)."""
    with svc.db.tenant_session(tenant.id) as session:
        ids = svc.notifications.notify(session, tenant, Event.LEAD_NEW, user_ids, key=key,
                                       context=dict(spec(Event.LEAD_NEW).sample), link="/pro/leads")
    return ids, time.time()


def _check(svc, tenant, ids: list[int], sendgrid: TimedSendGrid, label: str) -> tuple[int, int, list[float], float]:
    """(lost, duplicated, event->provider latencies in ms, last arrival) for the rows `ids`; raises BrokenInvariant
    when a row is not SENT."""
    references = {f"t{tenant.id}-n{i}" for i in ids}
    arrivals = [(ref, at) for ref, at in sendgrid.arrivals if ref in references]
    seen: dict[str, int] = {}
    for ref, _ in arrivals:
        seen[ref] = seen.get(ref, 0) + 1
    lost = len(references - set(seen))
    duplicated = sum(count - 1 for count in seen.values())
    with svc.db.tenant_session(tenant.id) as session:
        unsent = session.exec(select(sa.func.count()).select_from(Notification).where(
            Notification.id.in_(ids), Notification.status != DeliveryStatus.SENT)).one()
    if unsent:
        raise BrokenInvariant(f"{label}: {unsent} of {len(ids)} email rows are not sent")
    return lost, duplicated, [at for _, at in arrivals], max((at for _, at in arrivals), default=0.0)


def _latencies(commit: float, arrivals: list[float]) -> list[float]:
    return [(at - commit) * 1000 for at in arrivals]


def notifications_benchmark() -> list[Table]:
    table = Table(f"One new-lead event to {RECIPIENTS:,} professionals: email through Celery on Redis to SendGrid "
                  "(local fake), in-app rows in the same transaction", HEADERS)
    flush = redis.Redis.from_url(REDIS_URL)
    flush.flushdb()
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="mp-bench-notify-") as tmp, \
            TimedSendGrid() as sendgrid:
        data_dir = Path(tmp)
        # --- baseline: inline, one process, one delivery after the other
        inline = build_services(_settings(url, data_dir, sendgrid, None), jobs=InlineJobQueue(raise_errors=True))
        try:
            tenant, pros = _tenant_and_pros(inline, "inline", BASELINE)
            t0 = time.time()
            ids, commit = _event(inline, tenant, pros, "bench-inline")
            enqueue_s = time.time() - t0
            for note_id in ids:
                inline.jobs.deliver_notification(tenant.id, note_id)
            lost, duplicated, arrivals, last = _check(inline, tenant, ids, sendgrid, "inline")
            base_rate = len(ids) / (last - t0)
            lat = _latencies(commit, arrivals)
            table.add("baseline: inline (no Redis), 1 process", f"{BASELINE:,}", enqueue_s, base_rate,
                      percentile(lat, 50), percentile(lat, 95), percentile(lat, 99), lost, duplicated,
                      "1.00× (baseline)")
        finally:
            inline.close()

        # --- Celery on Redis, WORKERS worker processes
        settings = _settings(url, data_dir, sendgrid, REDIS_URL)
        svc = build_services(settings, jobs=CeleryJobQueue(make_celery(settings)), migrate=False)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "backend.jobs", "worker", "-Q", "celery", "-c", str(WORKERS),
             "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=PROJECT_ROOT, env=_worker_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            tenant, pros = _tenant_and_pros(svc, "celery", RECIPIENTS)
            _warm_up(svc, tenant, pros[:WORKERS * 2], sendgrid)
            t0 = time.time()
            ids, commit = _event(svc, tenant, pros, "bench-celery")
            for note_id in ids:
                svc.jobs.deliver_notification(tenant.id, note_id)
            enqueue_s = time.time() - t0
            _drain(sendgrid, tenant, ids, worker)
            memory = tree_memory(worker.pid)
            lost, duplicated, arrivals, last = _check(svc, tenant, ids, sendgrid, "celery")
            rate = len(ids) / (last - t0)
            lat = _latencies(commit, arrivals)
            table.add(f"Celery on Redis, {WORKERS} worker processes", f"{RECIPIENTS:,}", enqueue_s, rate,
                      percentile(lat, 50), percentile(lat, 95), percentile(lat, 99), lost, duplicated,
                      f"{rate / base_rate:.2f}×")
            with svc.db.tenant_session(tenant.id) as session:
                in_app = session.exec(select(sa.func.count()).select_from(Notification).where(
                    Notification.channel == Channel.IN_APP, Notification.dedupe_key.startswith("bench-celery:"))).one()
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
            svc.close()
            flush.flushdb()
    if lost or duplicated:
        raise BrokenInvariant(f"{lost} lost and {duplicated} duplicated deliveries")
    table.notes += [
        "enqueue = notify() (one row per recipient and channel: email + in-app, rendered once and personalised per "
        "row: name, unsubscribe link) + commit + one Celery task per email row; deliveries/s = email rows ÷ (last "
        "mail received by the provider − start of the event)",
        "event→provider = the provider receiving a mail − the event's commit (same machine clock)",
        f"✓ every email row SENT; the provider received each reference exactly once: 0 lost, 0 duplicated; "
        f"{in_app:,} in-app rows written with the event",
        f"workers: `celery -A backend.jobs worker -c {WORKERS} --pool prefork`, {memory['rss']:.0f} MiB RSS in all "
        "after the run; the fake SendGrid answers in-process (no network latency: a real provider adds ~100-300 ms "
        "per call, which more worker concurrency hides)",
    ]
    return [table]


def _warm_up(svc, tenant, pros: list[int], sendgrid: TimedSendGrid) -> None:
    """A few deliveries first, so that the workers have imported everything and opened their connections."""
    ids, _ = _event(svc, tenant, pros, "bench-warm-up")
    for note_id in ids:
        svc.jobs.deliver_notification(tenant.id, note_id)
    references = {f"t{tenant.id}-n{i}" for i in ids}
    deadline = time.time() + 120
    while time.time() < deadline:
        if references <= {ref for ref, _ in sendgrid.arrivals}:
            return
        time.sleep(0.2)
    raise BrokenInvariant("the Celery workers did not deliver the warm-up notifications within 120 s")


def _drain(sendgrid: TimedSendGrid, tenant, ids: list[int], worker: subprocess.Popen) -> None:
    references = {f"t{tenant.id}-n{i}" for i in ids}
    deadline = time.time() + DRAIN_TIMEOUT_S
    while time.time() < deadline:
        if worker.poll() is not None:
            raise BrokenInvariant(f"the Celery worker exited: {worker.stderr.read().decode()[-2000:]}")
        if references <= {ref for ref, _ in sendgrid.arrivals}:
            return
        time.sleep(0.25)
    raise BrokenInvariant(f"not every notification was delivered within {DRAIN_TIMEOUT_S} s")
