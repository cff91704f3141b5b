"""The database's tables, as SQLAlchemy Core objects: the one definition the code reads and
writes through. Alembic migrations (``migrations/versions``) create and upgrade them; a new
table or column is a new migration *and* a change here.

- ``cases``: a knowledge-base case as JSON, its passage embedding as float32 bytes, when it
  was last written.
- ``case_changes``: one row per case write (``upsert`` or ``delete``) with an increasing
  ``seq``; every worker applies them to its in-memory index in ``seq`` order, so the index of
  every worker converges on the database.
- ``bundle_decisions``: every reload decision (which bundle folder to serve), newest ``seq``
  wins; every worker serves the newest decision.
- ``api_keys``: named API keys with a role and an optional expiry; only a key's sha256 is kept.
- ``idempotency``: the stored answer of a write sent with an ``Idempotency-Key`` header,
  committed in the same transaction as the write, so a retry gets the same answer.
- ``predictions`` and ``feedback``: every triage answer and supervisors' corrections.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# SQLite's INTEGER PRIMARY KEY is its rowid (auto-increment); BigInteger elsewhere.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

cases = Table("cases", metadata,
              Column("case_id", String(200), primary_key=True),
              Column("data", Text, nullable=False),
              Column("embedding", LargeBinary, nullable=False),
              Column("updated_at", DateTime(timezone=True), nullable=False))

case_changes = Table("case_changes", metadata,
                     Column("seq", SeqType, primary_key=True, autoincrement=True),
                     Column("case_id", String(200), nullable=False),
                     Column("op", String(10), nullable=False),
                     Column("changed_at", DateTime(timezone=True), nullable=False))

bundle_decisions = Table("bundle_decisions", metadata,
                         Column("seq", SeqType, primary_key=True, autoincrement=True),
                         Column("bundle", String(200), nullable=False),
                         Column("model_version", String(100), nullable=False),
                         Column("decided_at", DateTime(timezone=True), nullable=False),
                         Column("decided_by", String(100), nullable=False))

api_keys = Table("api_keys", metadata,
                 Column("name", String(100), primary_key=True),
                 Column("role", String(20), nullable=False),
                 Column("key_sha256", String(64), nullable=False, unique=True),
                 Column("prefix", String(16), nullable=False),
                 Column("created_at", DateTime(timezone=True), nullable=False),
                 Column("expires_at", DateTime(timezone=True)),
                 Column("revoked_at", DateTime(timezone=True)))

idempotency = Table("idempotency", metadata,
                    Column("principal", String(100), primary_key=True),
                    Column("key", String(200), primary_key=True),
                    Column("route", String(200), nullable=False),
                    Column("request_sha256", String(64), nullable=False),
                    Column("status", Integer, nullable=False),
                    Column("body", Text, nullable=False),
                    Column("created_at", DateTime(timezone=True), nullable=False, index=True))

predictions = Table("predictions", metadata,
                    Column("prediction_id", String(40), primary_key=True),
                    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
                    Column("model_version", String(100), nullable=False),
                    Column("request_id", String(200)),
                    Column("channel", String(50)),
                    Column("text", Text),
                    Column("text_sha256", String(64), nullable=False),
                    Column("answer", Text, nullable=False))

feedback = Table("feedback", metadata,
                 Column("feedback_id", String(40), primary_key=True),
                 Column("prediction_id", String(40), nullable=False),
                 Column("created_at", DateTime(timezone=True), nullable=False),
                 Column("reviewer", String(200), nullable=False),
                 Column("reason", Text),
                 Column("corrections", Text, nullable=False),
                 Column("text", Text),
                 Index("ix_feedback_prediction", "prediction_id"))

__all__ = ["metadata", "cases", "case_changes", "bundle_decisions", "api_keys", "idempotency", "predictions",
           "feedback"]
