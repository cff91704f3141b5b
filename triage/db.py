"""Database engines, migrations and write transactions, for SQLite and PostgreSQL alike.

- :func:`open_engine` gives the one engine per URL of this process, created with
  ``hide_parameters=True`` (a failing statement is logged and raised without its values: those
  are complaint texts) and, on first use, migrated to the head revision by Alembic
  (``migrations/``), so every command and the service work on the current schema.
- :func:`mask_url` is how a database URL is ever printed or logged: without its password.
- :func:`writing` opens a write transaction that is ordered with every other writer's: SQLite
  takes the write lock at ``BEGIN IMMEDIATE``; PostgreSQL takes a transaction-scoped advisory
  lock. Writes to the case change log therefore commit in the order of their sequence numbers,
  which is what lets every worker apply them in order (a reader never sees seq 11 committed
  while seq 10 is still to come).
"""
from __future__ import annotations

import logging
import threading
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from triage.errors import DataError

log = logging.getLogger(__name__)

_ENGINES: dict = {}
_ENGINES_LOCK = threading.Lock()
_MIGRATED: set[str] = set()
# How long a statement waits for a lock held by another connection before it fails (SQLite's
# busy timeout, PostgreSQL's lock_timeout); the service then answers 503 and nothing is changed.
LOCK_TIMEOUT_MS = 10_000
MIGRATION_LOCK = "triage:migrations"
WRITE_LOCK = "triage:writes"


def mask_url(url: object) -> str:
    """``postgresql+psycopg://app:s3cret@db/triage`` → ``postgresql+psycopg://app:***@db/triage``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is not printed at all
        return "<unparsable database URL>"


def is_postgres(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(getattr(url, "drivername", url)).startswith("postgresql")


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode()) - 2 ** 31          # a stable signed 32-bit advisory lock key


def open_engine(url: str, upgrade: bool = True):
    """The shared SQLAlchemy engine for ``url`` (created on first use, then migrated to head)."""
    from sqlalchemy import create_engine, event

    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            if url.startswith("sqlite:///"):
                Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            try:
                engine = create_engine(url, hide_parameters=True, pool_pre_ping=not url.startswith("sqlite"))
            except Exception as exc:  # noqa: BLE001 - bad URL or missing driver; never echo the password
                raise DataError("DATABASE_URL", f"cannot open database {mask_url(url)}: "
                                f"{type(exc).__name__}") from None
            if url.startswith("sqlite"):
                _sqlite_pragmas(engine, event)
            elif is_postgres(engine):
                _postgres_settings(engine, event)
            _ENGINES[url] = engine
    if upgrade and url not in _MIGRATED:
        migrate(engine)
        _MIGRATED.add(url)
    return engine


def _sqlite_pragmas(engine, event) -> None:
    """WAL, full sync and a busy timeout; and SQLite transactions begun by SQLAlchemy (the
    driver's own implicit BEGIN is off), so :func:`writing` can ask for ``BEGIN IMMEDIATE``."""
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_MS)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("triage_write") else "BEGIN")


def _postgres_settings(engine, event) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        dbapi_conn.execute(f"SET lock_timeout = {int(LOCK_TIMEOUT_MS)}")
        dbapi_conn.autocommit = autocommit


def migration_lock(conn) -> None:
    """Serialise migrations across processes (PostgreSQL: an advisory lock held until the
    transaction ends; SQLite: the transaction already holds the write lock)."""
    if is_postgres(conn.engine):
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_key(MIGRATION_LOCK)})")


def migrate(engine) -> str:
    """Upgrade the database to the head revision in one transaction; returns the revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from triage.paths import ALEMBIC_INI, MIGRATIONS_DIR

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect().execution_options(triage_write=True) as conn:
        with conn.begin():
            migration_lock(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return revision or ""


@contextmanager
def writing(engine, ordered: bool = False) -> Iterator:
    """A write transaction. SQLite takes its write lock at the start (so a transaction that
    reads, then writes, waits for the lock instead of failing). ``ordered``: also ordered with
    every other ordered writer on PostgreSQL (the change log and reload decisions; see the
    module docstring)."""
    with engine.connect().execution_options(triage_write=True) as conn:
        with conn.begin():
            if ordered and is_postgres(engine):
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_lock_key(WRITE_LOCK)})")
            yield conn


def dispose(url: str) -> None:
    """Close and forget the engine of ``url`` (tests drop their databases afterwards)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
        _MIGRATED.discard(url)
    if engine is not None:
        engine.dispose()


def reset_engines() -> None:
    """Dispose of every engine of this process (tests; and after a fork)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _MIGRATED.clear()
