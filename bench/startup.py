"""`make run` in a throwaway clone: time to first page (cold and warm), and the running app's process tree."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.stats import tree_rss_mib

REPO = Path(__file__).resolve().parent.parent
# Variables that would point the app away from its embedded defaults (SQLite under ./data, in-process jobs).
OUTSIDE_SERVICES = ("DATABASE_URL", "DATABASE_APP_URL", "REDIS_URL", "REFLEX_REDIS_URL", "DATA_DIR", "ENVIRONMENT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_clone() -> Path:
    """A `git clone` of the committed tree, sharing the venv and bun through symlinks (no pip install)."""
    root = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    clone = root / "marketplace"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    (clone / ".tools").symlink_to(REPO / ".tools")
    return clone


def remove_clone(clone: Path) -> None:
    shutil.rmtree(clone.parent, ignore_errors=True)


def child_env(clone: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_SERVICES}
    env["PATH"] = f"{clone / '.tools/node_modules/.bin'}:{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def time_command(clone: Path, argv: list[str]) -> float:
    """Wall seconds of a short command run in the clone."""
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=clone, env=child_env(clone), check=True, capture_output=True, timeout=120)
    return time.perf_counter() - t0


def python_rss_mib(clone: Path, code: str) -> float:
    """Peak RSS (VmHWM) of a fresh interpreter running `code` in the clone."""
    probe = "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
    out = subprocess.run([".venv/bin/python", "-c", f"{code}\n{probe}"], cwd=clone, env=child_env(clone),
                         check=True, capture_output=True, text=True, timeout=120)
    return int(out.stdout.split()[-1]) / 1024


class MakeRun:
    """One `make run PORT=<port>` in its own session, so the whole process group can be stopped."""

    def __init__(self, clone: Path, port: int, log: Path):
        self.clone, self.port, self.log_path = clone, port, log
        self.proc: subprocess.Popen | None = None
        self.peak_rss_mib = 0.0

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        # `-o .venv/.installed`: the clone's requirements files are newer than the shared venv's stamp, and make
        # would otherwise re-run pip into the shared venv; everything else in the recipe runs as a user's would.
        argv = ["make", "-o", ".venv/.installed", "run", f"PORT={self.port}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.clone, env=child_env(self.clone), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_first_page(self, timeout_s: float) -> float:
        """Seconds from start() until GET / returns 200 with the HTML; samples the tree's RSS meanwhile."""
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        with httpx.Client(timeout=5) as client:
            while time.perf_counter() < deadline:
                self.peak_rss_mib = max(self.peak_rss_mib, tree_rss_mib(self.proc.pid))
                if self.proc.poll() is not None:
                    raise RuntimeError(f"make run exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    r = client.get(self.url + "/")
                    if r.status_code == 200 and "<html" in r.text.lower():
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        raise TimeoutError(f"no first page on {self.url} after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM the process group (then SIGKILL), including any descendant that left it; wait for the port."""
        if self.proc is None:
            return
        try:
            family = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for p in family:
                try:
                    p.send_signal(sig)
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(family, timeout=timeout_s / 2)
            try:
                self.proc.wait(timeout_s / 2)
            except subprocess.TimeoutExpired:
                continue
            if not alive:
                break
        deadline = time.monotonic() + timeout_s
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} still in use after stopping make run")
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
