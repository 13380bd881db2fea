"""Administration commands for whoever runs the server: `python -m backend.cli <command>`.

    create-operator --email E [--name N]    create a platform operator (the first one, or another)
    reset-operator-password --email E       set a new password and sign that operator out everywhere
    reindex [--tenant SLUG]                 rebuild the search index from the database (every marketplace
                                            when no slug is given)
    check-index [--tenant SLUG]             compare the search index with the database: documents missing,
                                            stale or extra; exit code 1 when they disagree

The password is never a default and never a command-line argument (other users can read those in `ps`):
it is asked twice on the terminal, or read from --password-file PATH (first line), or from the
environment variable named by --password-env VAR. It must pass the same rules as sign-up.

Exit codes: 0 done, 1 refused (weak or mismatched password, operator exists / unknown, invalid
configuration, unknown marketplace, search unavailable, an index out of step with the database),
2 usage (bad arguments, unreadable password file, unset variable).
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
import time
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import select

from backend.accounts.security import Passwords
from backend.bootstrap import make_gazetteer, make_matching, make_object_store
from backend.config import Settings, get_settings
from backend.db import Database
from backend.errors import DomainError, ValidationFailed
from backend.matching.ports import SearchUnavailable
from backend.migrate import upgrade
from backend.platform.service import PlatformService
from backend.tenancy.models import Tenant
from backend.tenancy.service import TenantDirectory
from backend.validation import normalize_email

OK, REFUSED, USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend.cli",
                                     description="Marketplace administration commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def password_sources(cmd: argparse.ArgumentParser) -> None:
        group = cmd.add_mutually_exclusive_group()
        group.add_argument("--password-file", metavar="PATH",
                           help="read the password from the first line of this file (keep it mode 600)")
        group.add_argument("--password-env", metavar="VAR",
                           help="read the password from this environment variable")

    create = commands.add_parser("create-operator", help="create a platform operator account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="Platform operator")
    password_sources(create)

    reset = commands.add_parser("reset-operator-password",
                                help="set a new password for an operator and revoke their sessions")
    reset.add_argument("--email", required=True)
    password_sources(reset)

    for name, text in (("reindex", "rebuild the search index from the database"),
                       ("check-index", "compare the search index with the database (exit code 1 when they differ)")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--tenant", metavar="SLUG", help="only this marketplace (default: every one)")
    return parser


def read_password(args: argparse.Namespace) -> str:
    """From the file, the variable or the terminal (asked twice); never from argv, never a default."""
    if args.password_file:
        path = Path(args.password_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"Cannot read the password file {path}: {exc}") from None
        if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            print(f"warning: {path} can be read by other users; `chmod 600 {path}` (or delete it now)",
                  file=sys.stderr)
        lines = text.splitlines()
        return lines[0] if lines else ""
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise UsageError(f"The environment variable {args.password_env} is not set.")
        return value
    first = getpass.getpass("New password: ")
    second = getpass.getpass("Repeat it: ")
    if first != second:
        raise ValidationFailed({"password": "The two passwords do not match"})
    return first


def _platform(settings: Settings):
    """Only what these commands need (no chat, storage or payment providers), after migrating."""
    upgrade(settings.owner_database_url, settings)
    db = Database(settings)
    return PlatformService(db, Passwords(settings), TenantDirectory(db, settings)), db


def _refused(exc: DomainError) -> int:
    if isinstance(exc, ValidationFailed):
        for field, message in exc.errors.items():
            print(f"error: {field}: {message}", file=sys.stderr)
    else:
        print(f"error: {exc.message}", file=sys.stderr)
    return REFUSED


def _search_index(args: argparse.Namespace, settings: Settings) -> int:
    """reindex / check-index, per marketplace, in slug order."""
    upgrade(settings.owner_database_url, settings)
    db = Database(settings)
    matching = make_matching(settings, db, make_object_store(settings), make_gazetteer(settings))
    try:
        with db.platform_session() as session:
            query = select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
            if args.tenant:
                query = query.where(Tenant.slug == args.tenant.strip().lower())
            tenants = list(session.exec(query).all())
        if args.tenant and not tenants:
            print(f"error: there is no marketplace {args.tenant!r}", file=sys.stderr)
            return REFUSED
        consistent = True
        for tenant_id, slug in tenants:
            started = time.perf_counter()
            if args.command == "reindex":
                counts = matching.reindex(tenant_id)
                print(f"{slug}: indexed {counts['pros']} professionals and {counts['requests']} open requests "
                      f"in {time.perf_counter() - started:.2f} s")
                continue
            report = matching.check(tenant_id)
            if report.ok:
                print(f"{slug}: the index agrees with the database")
                continue
            consistent = False
            for label, found in (("missing", report.missing), ("stale", report.stale), ("extra", report.extra)):
                for kind, ids in found.items():
                    if ids:
                        print(f"{slug}: {label} {kind} documents ({len(ids)}): {', '.join(map(str, ids[:50]))}"
                              f"{' ...' if len(ids) > 50 else ''}")
        if not consistent:
            print("The index is out of step with the database: run `python -m backend.cli reindex`.",
                  file=sys.stderr)
        return OK if consistent else REFUSED
    except SearchUnavailable as exc:
        print(f"error: the search engine is unavailable: {exc}", file=sys.stderr)
        return REFUSED
    finally:
        matching.close()
        db.dispose()


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)  # exits with 2 on bad usage
    try:
        settings = settings or get_settings()
    except ValidationError as exc:
        print(f"error: the configuration is invalid:\n{exc}", file=sys.stderr)
        return REFUSED
    if args.command in ("reindex", "check-index"):
        return _search_index(args, settings)
    try:
        password = read_password(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except ValidationFailed as exc:
        return _refused(exc)
    except (EOFError, KeyboardInterrupt):
        print("\naborted: nothing was changed", file=sys.stderr)
        return REFUSED
    platform, db = _platform(settings)
    try:
        if args.command == "create-operator":
            platform.create_operator(args.email, password, args.name)
            print(f"Created platform operator {normalize_email(args.email)}; "
                  f"sign in at {settings.public_url.rstrip('/')}/operator/login")
        else:
            revoked = platform.reset_operator_password(args.email, password)
            print(f"Password changed for {normalize_email(args.email)}; "
                  f"{revoked} open session{'s' if revoked != 1 else ''} signed out")
    except DomainError as exc:
        return _refused(exc)
    finally:
        db.dispose()
    return OK


if __name__ == "__main__":
    sys.exit(main())
