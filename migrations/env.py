"""Alembic environment. Run by ``triage.db.migrate`` (which hands over an open transaction that
holds the migration lock) or by the ``alembic`` command (which opens ``$TRIAGE_DATABASE_URL``,
else SQLite at ``var/triage.db``, and takes the same lock)."""
from __future__ import annotations

from alembic import context

from triage.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from triage.db import migration_lock, open_engine
    from triage.paths import database_url

    with open_engine(database_url(), upgrade=False).begin() as conn:
        migration_lock(conn)
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
