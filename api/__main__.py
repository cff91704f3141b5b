"""``python -m api`` — run the triage service, or manage its API keys and database.

    python -m api [--host H] [--port P] [--bundle DIR] [--workers N] [--insecure]
    python -m api keys create --name NAME --role intake|supervisor|admin [--expires 2027-06-30|90d]
    python -m api keys list
    python -m api keys revoke NAME
    python -m api migrate

The database is ``TRIAGE_DATABASE_URL`` (or ``--database-url``); it is migrated to the head
revision before anything else. Serving on an address other than loopback needs at least one
API key, unless ``--insecure`` says that an open service is really meant.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _expiry(value: str) -> datetime:
    m = re.fullmatch(r"(\d+)d", value)
    if m:
        return datetime.now(timezone.utc) + timedelta(days=int(m.group(1)))
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--expires takes an ISO date or time (2027-06-30) or a number of days "
                                         f"(90d), got {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _database_url(given: str | None) -> str:
    from api.settings import Settings
    return given or Settings().database_url


def keys_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api keys", description="Manage API keys (stored hashed).")
    parser.add_argument("--database-url", help="default: $TRIAGE_DATABASE_URL, else SQLite at var/triage.db")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["intake", "supervisor", "admin"])
    create.add_argument("--expires", type=_expiry, help="ISO date/time or a number of days (90d); default: never")
    sub.add_parser("list", help="the keys, their roles and states (never the keys)")
    revoke = sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    args = parser.parse_args(argv)

    from triage.db import mask_url
    from triage.errors import TriageError
    from triage.keys import KeyStore

    url = _database_url(args.database_url)
    try:
        store = KeyStore(url)
        if args.command == "create":
            key = store.create(args.name, args.role, args.expires)
            print(key)
            print(f"key {args.name!r} ({args.role}) stored hashed in {mask_url(url)}; this is the only time it is "
                  "shown", file=sys.stderr)
        elif args.command == "list":
            rows = store.list()
            print(f"{'name':<24} {'role':<11} {'prefix':<11} {'state':<8} {'created':<26} expires")
            for r in rows:
                print(f"{r['name']:<24} {r['role']:<11} {r['prefix']:<11} {r['state']:<8} {r['created_at'][:25]:<26} "
                      f"{(r['expires_at'] or 'never')[:25]}")
            if not rows:
                print("(no keys: the service is open to loopback callers only)", file=sys.stderr)
        elif not store.revoke(args.name):
            print(f"error: no active key named {args.name!r}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {args.name!r}", file=sys.stderr)
    except TriageError as exc:
        print(f"error: [{exc.code}] {exc.message}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"error: cannot use the database {mask_url(url)}: {type(getattr(exc, 'orig', None) or exc).__name__}",
              file=sys.stderr)
        return 2
    return 0


def migrate_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api migrate", description="Upgrade the database to head.")
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    from triage.db import migrate, mask_url, open_engine

    url = _database_url(args.database_url)
    try:
        print(f"{mask_url(url)}: at revision {migrate(open_engine(url, upgrade=False))}")
    except SQLAlchemyError as exc:
        print(f"error: cannot migrate {mask_url(url)}: {type(getattr(exc, 'orig', None) or exc).__name__}",
              file=sys.stderr)
        return 2
    return 0


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bundle", type=Path, help="bundle folder to serve (default: the newest reload decision, "
                        "else models/CURRENT)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (they agree through the database)")
    parser.add_argument("--insecure", action="store_true",
                        help="serve on a non-loopback address although no API key exists (everyone is admin)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.bundle:
        os.environ["TRIAGE_BUNDLE"] = str(args.bundle.resolve())
    os.environ["TRIAGE_LOG_LEVEL"] = args.log_level
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="triage-metrics-")

    import logging

    import uvicorn

    from api.observe import configure_logging
    from api.settings import Settings
    from triage.db import mask_url
    from triage.errors import TriageError
    from triage.keys import KeyStore

    settings = Settings()
    configure_logging(args.log_level, settings.json_logs)
    log = logging.getLogger("api")
    try:
        keys = KeyStore(settings.database_url)          # migrates the database to head first
        open_service = keys.active_count() == 0
    except TriageError as exc:
        log.error("cannot open the database %s: %s", mask_url(settings.database_url), exc.message)
        return 2
    except Exception as exc:  # noqa: BLE001 - an unreachable server; never print the URL's password
        log.error("cannot open the database %s: %s", mask_url(settings.database_url), type(exc).__name__)
        return 2
    if open_service and not is_loopback(args.host) and not args.insecure:
        log.error("refusing to serve on %s: no API key exists, so anyone who can reach the port would be admin. "
                  "Create one with `python -m api keys create --name NAME --role admin`, or pass --insecure",
                  args.host, extra={"code": "INSECURE_BINDING"})
        return 2
    if open_service:
        log.warning("no API key exists: every caller is the local admin%s",
                    " (--insecure on a non-loopback address)" if not is_loopback(args.host) else "")
    uvicorn.run("api.app:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_config=None, access_log=False, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        return keys_main(argv[1:])
    if argv[:1] == ["migrate"]:
        return migrate_main(argv[1:])
    return serve_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
