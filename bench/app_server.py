"""The real app for a bench: `reflex run --env prod --single-port` in a throwaway `git clone` (the .venv and .tools
symlinked, as bench/startup.py does) against a throwaway PostgreSQL database seeded by `backend.seed`, with an
nx-27017 message store in its own process passed to the app as MONGODB_URL (the app's default in-process store
could not be read by a second process). BENCH_CHAT_CLONE=<path> reuses an existing clone (kept afterwards), to skip
the frontend build while working on a bench.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from backend.config import Settings
from bench import startup
from bench.helper_servers import HelperProcess
from bench.login import throwaway_database

BUILD_TIMEOUT_S = 420.0  # `reflex run --env prod` in a fresh clone: bun install + frontend build


class App:
    """`reflex run --env prod --single-port` in a clone, as tests/e2e/conftest.py starts it, in its own session."""

    def __init__(self, clone: Path, env: dict, log: Path):
        self.clone, self.env, self.log_path = clone, env, log
        self.port = startup.free_port()
        self.env["PUBLIC_URL"] = self.url
        self.runner = startup.MakeRun(clone, self.port, log)  # for its process-tree stop and log tail

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def pid(self) -> int:
        return self.runner.proc.pid

    def start(self, timeout_s: float) -> float:
        argv = [str(self.clone / ".venv/bin/reflex"), "run", "--env", "prod", "--single-port", "--frontend-port",
                str(self.port), "--backend-port", str(self.port), "--loglevel", "warning"]
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.runner.proc = subprocess.Popen(argv, cwd=self.clone, env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() - t0 < timeout_s:
                if self.runner.proc.poll() is not None:
                    raise RuntimeError(f"the app exited with {self.runner.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(self.url + "/ping").status_code == 200 and client.get(self.url + "/").is_success:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        raise TimeoutError(f"the app did not answer on {self.url} within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.runner.proc is not None:
            self.runner.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.runner.log_tail(lines)


@contextmanager
def running_app(log=print):
    """Throwaway database, clone, data dir and message store; the seeded app running. Yields (app, settings for
    services in this process, the message store's helper process, its URL); stops and removes all of it after."""
    own_clone = not os.environ.get("BENCH_CHAT_CLONE")
    clone = startup.make_clone() if own_clone else Path(os.environ["BENCH_CHAT_CLONE"])
    try:
        with throwaway_database() as db_url, tempfile.TemporaryDirectory(prefix="mp-bench-chat-") as tmp:
            data_dir = Path(tmp) / "data"
            mongo = HelperProcess("mongo", str(Path(tmp) / "chat"))
            try:
                mongo_url = f"mongodb://127.0.0.1:{mongo.port}/marketplace?directConnection=true"
                env = startup.child_env(clone) | {"DATABASE_URL": db_url, "DATA_DIR": str(data_dir),
                                                 "MONGODB_URL": mongo_url, "ENVIRONMENT": "development",
                                                 "REFLEX_TELEMETRY_ENABLED": "false"}
                subprocess.run([str(clone / ".venv/bin/python"), "-m", "backend.seed"], cwd=clone, env=env,
                               check=True, capture_output=True, timeout=180)
                app = App(clone, env, Path(tmp) / "app.log")
                log(f"  `reflex run --env prod` in {clone} on port {app.port} ...", end=" ", flush=True)
                try:
                    seconds = app.start(BUILD_TIMEOUT_S)
                    log(f"up after {seconds:.0f} s", flush=True)
                    settings = Settings(_env_file=None, database_url=db_url, data_dir=data_dir, redis_url=None,
                                        mongodb_url=mongo_url)
                    yield app, settings, mongo, mongo_url
                finally:
                    app.stop()
            finally:
                mongo.stop()
    finally:
        if own_clone:
            startup.remove_clone(clone)
