"""sign-off idempotency: Idempotency-Key and request hash on report_signoffs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:45:00

A retried ``POST /v1/jobs/{id}/report/sign`` (same ``Idempotency-Key``, same body) returns
the record the first request made instead of appending a second one; the unique index
makes that hold even for concurrent retries. Columns are only added (the append-only
trigger fires on UPDATE/DELETE/TRUNCATE, not on ALTER TABLE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "report_signoffs", sa.Column("idempotency_key", sa.String(length=255), nullable=True)
    )
    op.add_column(
        "report_signoffs", sa.Column("request_hash", sa.String(length=64), nullable=True)
    )
    op.create_index(
        "uq_report_signoffs_job_idempotency_key",
        "report_signoffs",
        ["job_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_report_signoffs_job_idempotency_key", table_name="report_signoffs")
    op.drop_column("report_signoffs", "request_hash")
    op.drop_column("report_signoffs", "idempotency_key")
