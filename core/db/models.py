"""Tables: tenants, API keys, uploads, jobs and the transactional outbox."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# re-exported: the job enums are defined once, in core.enums
from core.enums import TERMINAL_STATES as TERMINAL_STATES
from core.enums import JobStage as JobStage
from core.enums import JobState as JobState
from core.jsonable import JSONObject
from core.jsonable import JSONValue as JSONValue  # SQLAlchemy resolves JSONObject's args here


class JobKind(enum.StrEnum):
    SPATIAL = "spatial"
    # further kinds (test-only ones under tests/) register with core.jobs.outbox.register_kind


class KeyRole(enum.StrEnum):
    """What an API key may do: submitters upload, submit and read; reviewers also sign reports."""

    SUBMITTER = "submitter"
    REVIEWER = "reviewer"


class SignoffStatus(enum.StrEnum):
    """The status a sign-off gives the report (a report with none is ``preliminary``)."""

    FINAL = "final"
    AMENDED = "amended"


class OutboxKind(enum.StrEnum):
    TASK = "task"
    WEBHOOK = "webhook"


def _values(e: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{m.value}'" for m in e)


class Base(DeclarativeBase):
    """The declarative base; JSON columns name their type (``JSONB``) in ``mapped_column``."""


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(f"role IN ({_values(KeyRole)})", name="ck_api_keys_role"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(
        String(16), default=KeyRole.SUBMITTER.value, server_default=KeyRole.SUBMITTER.value
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # display text only
    format: Mapped[str] = mapped_column(String(32))  # h5ad | tar.gz | tar | zip
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UploadSession(Base):
    """A resumable upload: chunks arrive in order (``received`` bytes so far) and are kept as
    objects under ``upload-sessions/{tenant}/{id}/`` until ``complete`` makes an Upload."""

    __tablename__ = "upload_sessions"
    __table_args__ = (
        CheckConstraint(
            "received >= 0 AND received <= total_size", name="ck_upload_sessions_received"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # display text only
    total_size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    upload_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("uploads.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"state IN ({_values(JobState)})", name="ck_jobs_state"),
        CheckConstraint(f"stage IN ({_values(JobStage)})", name="ck_jobs_stage"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="ck_jobs_progress"),
        Index(
            "uq_jobs_tenant_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_state_updated", "state", "updated_at"),
        # the console's job list filtered by report status, newest or oldest first (keyset)
        Index(
            "ix_jobs_tenant_report_status_created", "tenant_id", "report_status", "created_at", "id"
        ),
        Index("ix_jobs_tenant_state_created", "tenant_id", "state", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    upload_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uploads.id"))
    kind: Mapped[str] = mapped_column(String(32), default=JobKind.SPATIAL.value)
    external_sample_id: Mapped[str | None] = mapped_column(String(255), index=True)
    options: Mapped[JSONObject] = mapped_column(JSONB, default=dict)
    callback_url: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))

    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value)
    stage: Mapped[str] = mapped_column(String(16), default=JobStage.VALIDATING.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # fencing token: every claim adds one
    stage_attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims of the current phase
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # requeues after a dependency outage (database, storage): they use no attempt
    transient_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    analysis_prefix: Mapped[str | None] = mapped_column(String(512))
    report_prefix: Mapped[str | None] = mapped_column(String(512))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[JSONObject] = mapped_column(JSONB, default=dict)
    summary: Mapped[JSONObject] = mapped_column(JSONB, default=dict)
    # status of the latest sign-off (final | amended); None until signed (a succeeded job's
    # report is then preliminary). Kept with the sign-off in one transaction: the job list
    # filters on it and the job's ETag changes with it.
    report_status: Mapped[str | None] = mapped_column(String(16))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReportSignoff(Base):
    """One sign-off of a job's report: append-only (a trigger refuses UPDATE and DELETE)."""

    __tablename__ = "report_signoffs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_values(SignoffStatus)})", name="ck_report_signoffs_status"),
        Index("uq_report_signoffs_job_seq", "job_id", "seq", unique=True),
        Index(
            "uq_report_signoffs_job_idempotency_key",
            "job_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per job
    reviewer: Mapped[str] = mapped_column(String(255))  # the name the lab knows them by
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # a retried request (same Idempotency-Key, same body) returns this record (migration 0004)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(
        String(64)
    )  # sha256 of reviewer/status/comment


class Worker(Base):
    """A worker process's heartbeat: the reconciler takes back jobs whose holder fell silent."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid, the lease owner
    queues: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_values(OutboxKind)})", name="ck_outbox_kind"),
        Index(
            "ix_outbox_pending",
            "available_at",
            postgresql_where=text("sent_at IS NULL AND dead_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    payload: Mapped[JSONObject] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
