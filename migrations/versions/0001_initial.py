"""The knowledge base, predictions and feedback, as the service created them before migrations.

A database made by that earlier service already holds these tables: they are left as they are
and only recorded as migrated.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "cases" not in existing:
        op.create_table("cases",
                        sa.Column("case_id", sa.String(200), primary_key=True),
                        sa.Column("data", sa.Text, nullable=False),
                        sa.Column("embedding", sa.LargeBinary, nullable=False),
                        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))
    if "predictions" not in existing:
        op.create_table("predictions",
                        sa.Column("prediction_id", sa.String(40), primary_key=True),
                        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                        sa.Column("model_version", sa.String(100), nullable=False),
                        sa.Column("request_id", sa.String(200)),
                        sa.Column("channel", sa.String(50)),
                        sa.Column("text", sa.Text),
                        sa.Column("text_sha256", sa.String(64), nullable=False),
                        sa.Column("answer", sa.Text, nullable=False))
        op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    if "feedback" not in existing:
        op.create_table("feedback",
                        sa.Column("feedback_id", sa.String(40), primary_key=True),
                        sa.Column("prediction_id", sa.String(40), nullable=False),
                        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                        sa.Column("reviewer", sa.String(200), nullable=False),
                        sa.Column("reason", sa.Text),
                        sa.Column("corrections", sa.Text, nullable=False),
                        sa.Column("text", sa.Text))
        op.create_index("ix_feedback_prediction", "feedback", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
    op.drop_table("cases")
