"""upload_sessions: resumable chunked uploads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:40:00

One row per resumable upload (``POST /v1/uploads/sessions``): the declared size, the chunk
size fixed at creation, the bytes received so far (chunks arrive in order), and the upload
it became once completed. Abandoned sessions are swept by the relay after
``MGS_UPLOAD_SESSION_TTL_S`` without a chunk.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.String(length=64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_size", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("upload_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("uploads.id")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "received >= 0 AND received <= total_size", name="ck_upload_sessions_received"
        ),
    )
    op.create_index("ix_upload_sessions_tenant_id", "upload_sessions", ["tenant_id"])
    op.create_index("ix_upload_sessions_updated_at", "upload_sessions", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_upload_sessions_updated_at", table_name="upload_sessions")
    op.drop_index("ix_upload_sessions_tenant_id", table_name="upload_sessions")
    op.drop_table("upload_sessions")
