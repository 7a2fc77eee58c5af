"""jobs.report_status (latest sign-off) and indexes for the console's job list

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-06 04:45:00

``jobs.report_status`` holds the status of a job's latest sign-off (``final`` or
``amended``; NULL until signed: a succeeded job's report is then ``preliminary``). It is
written in the sign-off's transaction and back-filled here from ``report_signoffs``. Two
indexes serve the job list filtered by report status or by state, newest or oldest first,
with keyset paging on ``(created_at, id)``. The job-change trigger now also fires when the
report status changes, so a long poll sees a sign-off.

(Revises 0003, the head when written; if a 0004 lands first, the integrator chains this
one after it: nothing here depends on 0004.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TRIGGER = """
DROP TRIGGER IF EXISTS jobs_notify_changed ON jobs;
CREATE TRIGGER jobs_notify_changed
    AFTER UPDATE ON jobs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.stage IS DISTINCT FROM NEW.stage{extra})
    EXECUTE FUNCTION jobs_notify_changed();
"""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("report_status", sa.String(length=16), nullable=True))
    op.execute(
        """
        UPDATE jobs SET report_status = latest.status
        FROM (SELECT DISTINCT ON (job_id) job_id, status FROM report_signoffs
              ORDER BY job_id, seq DESC) AS latest
        WHERE jobs.id = latest.job_id
        """
    )
    op.create_index(
        "ix_jobs_tenant_report_status_created",
        "jobs",
        ["tenant_id", "report_status", "created_at", "id"],
    )
    op.create_index(
        "ix_jobs_tenant_state_created", "jobs", ["tenant_id", "state", "created_at", "id"]
    )
    op.execute(
        _TRIGGER.format(extra=" OR OLD.report_status IS DISTINCT FROM NEW.report_status")
    )


def downgrade() -> None:
    op.execute(_TRIGGER.format(extra=""))
    op.drop_index("ix_jobs_tenant_state_created", table_name="jobs")
    op.drop_index("ix_jobs_tenant_report_status_created", table_name="jobs")
    op.drop_column("jobs", "report_status")
