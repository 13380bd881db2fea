"""Find or start the PostgreSQL and Redis servers the tests need.

Order: DATABASE_URL / REDIS_URL from the environment; else the servers on 127.0.0.1;
else throwaway ones started from Debian's packages in a temp dir. A missing
prerequisite fails loudly with what to install.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._cleanups: list = []
        self.postgres_admin_url = self._postgres()
        self.redis_url = self._redis()

    # -------------------------------------------------------------- PostgreSQL

    def _postgres(self) -> str:
        if os.environ.get("DATABASE_URL"):
            return os.environ["DATABASE_URL"]
        if _port_open("127.0.0.1", 5432):
            user = os.environ.get("PGUSER") or ("postgres" if os.geteuid() != 0 else "root")
            return f"postgresql+psycopg://{user}@127.0.0.1:5432/test"
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL is needed for the tests: set DATABASE_URL, run a server on "
                               "127.0.0.1:5432, or `apt-get install -y postgresql` so a throwaway one can start.")
        bindir = os.path.dirname(bins[-1])
        data = tempfile.mkdtemp(prefix="mp-pg-")
        port = _free_port()
        run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        if run_as:
            shutil.chown(data, "postgres")
        subprocess.run([*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"], check=True,
                       capture_output=True)
        proc = subprocess.Popen([*run_as, f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", data,
                                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        self._cleanups.append(lambda: shutil.rmtree(data, ignore_errors=True))
        self._wait(port, "PostgreSQL")
        subprocess.run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "test"],
                       check=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"

    # -------------------------------------------------------------- Redis

    def _redis(self) -> str:
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        if _port_open("127.0.0.1", 6379):
            return "redis://127.0.0.1:6379/0"
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("Redis is needed for the tests: set REDIS_URL, run a server on 127.0.0.1:6379, "
                               "or `apt-get install -y redis-server` so a throwaway one can start.")
        port = _free_port()
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        self._wait(port, "Redis")
        return f"redis://127.0.0.1:{port}/0"

    @staticmethod
    def _wait(port: int, what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _port_open("127.0.0.1", port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"throwaway {what} did not start on port {port}")

    # -------------------------------------------------------------- databases

    def create_database(self, name: str, owner: str | None = None) -> str:
        """A fresh database; returns its URL with the admin's credentials (owner: a role to own it)."""
        import psycopg

        admin = urlsplit(self.postgres_admin_url.replace("+psycopg", ""))
        with psycopg.connect(admin.geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
        return self.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"

    def ensure_login_role(self, name: str, password: str) -> None:
        """A plain LOGIN role (not superuser, no BYPASSRLS/CREATEROLE/CREATEDB), created if absent.

        Roles are cluster-wide and several test processes share one server, so this is idempotent and
        serialised by an advisory lock in the admin database (which every test process connects to);
        migrations that create the same role concurrently tolerate it existing (backend/rls.py).
        An existing role is only given LOGIN if it lacks it: its password is left alone (trust auth here)."""
        import psycopg
        from psycopg import sql

        admin = urlsplit(self.postgres_admin_url.replace("+psycopg", ""))
        with psycopg.connect(admin.geturl(), autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('marketplace-tests: roles'))")
            try:
                row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
                if row is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB "
                                         "PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
                elif not row[0]:
                    conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name),
                                                                                  sql.Literal(password)))
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('marketplace-tests: roles'))")

    @staticmethod
    def url_as(database_url: str, user: str, password: str | None) -> str:
        """The same database, connecting as another role."""
        from sqlalchemy.engine import make_url

        return make_url(database_url).set(username=user, password=password).render_as_string(hide_password=False)

    def drop_database(self, name: str) -> None:
        import psycopg

        admin = urlsplit(self.postgres_admin_url.replace("+psycopg", ""))
        with psycopg.connect(admin.geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for cleanup in self._cleanups:
            cleanup()
