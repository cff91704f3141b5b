"""Shared state for several workers (the case change log and reload decisions), API keys, and
stored answers for idempotent writes.

Existing cases get one ``upsert`` change each, so a worker that starts from the change log
builds the same index as one that loads the table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    changes = op.create_table("case_changes",
                              sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
                              sa.Column("case_id", sa.String(200), nullable=False),
                              sa.Column("op", sa.String(10), nullable=False),
                              sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table("bundle_decisions",
                    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
                    sa.Column("bundle", sa.String(200), nullable=False),
                    sa.Column("model_version", sa.String(100), nullable=False),
                    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("decided_by", sa.String(100), nullable=False))
    op.create_table("api_keys",
                    sa.Column("name", sa.String(100), primary_key=True),
                    sa.Column("role", sa.String(20), nullable=False),
                    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
                    sa.Column("prefix", sa.String(16), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("expires_at", sa.DateTime(timezone=True)),
                    sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.create_table("idempotency",
                    sa.Column("principal", sa.String(100), primary_key=True),
                    sa.Column("key", sa.String(200), primary_key=True),
                    sa.Column("route", sa.String(200), nullable=False),
                    sa.Column("request_sha256", sa.String(64), nullable=False),
                    sa.Column("status", sa.Integer, nullable=False),
                    sa.Column("body", sa.Text, nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_idempotency_created_at", "idempotency", ["created_at"])
    ids = [r[0] for r in op.get_bind().execute(sa.text("SELECT case_id FROM cases ORDER BY case_id"))]
    if ids:
        now = datetime.now(timezone.utc)
        op.bulk_insert(changes, [{"case_id": i, "op": "upsert", "changed_at": now} for i in ids])


def downgrade() -> None:
    for table in ("idempotency", "api_keys", "bundle_decisions", "case_changes"):
        op.drop_table(table)
