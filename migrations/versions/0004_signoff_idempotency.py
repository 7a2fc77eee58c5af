"""sign-off idempotency (Idempotency-Key, request hash); job row change notifications


Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:45:00

A retried ``POST /v1/jobs/{id}/report/sign`` (same ``Idempotency-Key``, same body) returns
the record the first request made instead of appending a second one; the unique index
makes that hold even for concurrent retries. Columns are only added (the append-only
trigger fires on UPDATE/DELETE/TRUNCATE, not on ALTER TABLE).

A trigger on ``jobs`` sends ``NOTIFY mgs_job_touched, '<job id>'`` on every update or
delete of a row (progress and heartbeats included): the API processes drop that job's
cached status body (``MGS_STATUS_CACHE_ENTRIES``, api/longpoll.py).
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
    op.execute(
        """
        CREATE FUNCTION jobs_notify_touched() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('mgs_job_touched', OLD.id::text);
            ELSE
                PERFORM pg_notify('mgs_job_touched', NEW.id::text);
            END IF;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER jobs_notify_touched
            AFTER UPDATE OR DELETE ON jobs FOR EACH ROW
            EXECUTE FUNCTION jobs_notify_touched();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS jobs_notify_touched ON jobs;
        DROP FUNCTION IF EXISTS jobs_notify_touched();
        """
    )
    op.drop_index("uq_report_signoffs_job_idempotency_key", table_name="report_signoffs")
    op.drop_column("report_signoffs", "request_hash")
    op.drop_column("report_signoffs", "idempotency_key")
