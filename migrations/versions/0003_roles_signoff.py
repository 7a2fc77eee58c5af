"""key roles, report sign-offs (append-only), job change notifications

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-06 01:40:00

Existing keys become submitters. ``report_signoffs`` refuses UPDATE and DELETE
(a trigger), so the sign-off history can only grow. A trigger on ``jobs`` sends
``NOTIFY mgs_job_changed, '<job id>'`` when a job's state or stage changes; the
API's long poll (``GET /v1/jobs/{id}?wait=N``) listens for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("role", sa.String(length=16), server_default="submitter", nullable=False),
    )
    op.create_check_constraint(
        "ck_api_keys_role", "api_keys", "role IN ('submitter', 'reviewer')"
    )
    op.create_table(
        "report_signoffs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('final', 'amended')", name="ck_report_signoffs_status"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_report_signoffs_job_seq", "report_signoffs", ["job_id", "seq"], unique=True
    )
    op.execute(
        """
        CREATE FUNCTION report_signoffs_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'report_signoffs is append-only (% refused)', TG_OP;
        END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER report_signoffs_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON report_signoffs
            FOR EACH STATEMENT EXECUTE FUNCTION report_signoffs_append_only();

        CREATE FUNCTION jobs_notify_changed() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('mgs_job_changed', NEW.id::text);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER jobs_notify_changed
            AFTER UPDATE ON jobs FOR EACH ROW
            WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.stage IS DISTINCT FROM NEW.stage)
            EXECUTE FUNCTION jobs_notify_changed();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS jobs_notify_changed ON jobs;
        DROP FUNCTION IF EXISTS jobs_notify_changed();
        DROP TRIGGER IF EXISTS report_signoffs_append_only ON report_signoffs;
        DROP FUNCTION IF EXISTS report_signoffs_append_only();
        """
    )
    op.drop_index("uq_report_signoffs_job_seq", table_name="report_signoffs")
    op.drop_table("report_signoffs")
    op.drop_constraint("ck_api_keys_role", "api_keys", type_="check")
    op.drop_column("api_keys", "role")
