"""Queries only: statement builders shared by the async API and the sync workers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import (
    CompoundSelect,
    Delete,
    Insert,
    Select,
    Update,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)

from core.db.models import (
    TERMINAL_STATES,
    ApiKey,
    Job,
    JobStage,
    JobState,
    OutboxKind,
    OutboxMessage,
    ReportSignoff,
    Upload,
    UploadSession,
    Worker,
)
from core.enums import Phase

ANALYSIS_STAGES = (JobStage.VALIDATING.value, JobStage.ANALYZING.value)


# Hot statements (every request / every poll) are built once and take bound parameters:
# building a statement costs more than running it on a local Postgres.
TENANT_FOR_KEY_HASH = select(ApiKey.tenant_id, ApiKey.id, ApiKey.role).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)
JOB_OF_TENANT = select(Job).where(
    Job.id == bindparam("job_id"), Job.tenant_id == bindparam("tenant_id")
)


PING = select(literal(1))  # readiness: the database answers


def tenant_for_key_hash(key_hash: str) -> tuple[Select[str, uuid.UUID, str], dict[str, str]]:
    """(tenant id, key id, role) of an active key."""
    return TENANT_FOR_KEY_HASH, {"key_hash": key_hash}


def signoffs_of_job(job_id: uuid.UUID) -> Select[ReportSignoff]:
    """A job's sign-offs, oldest first (the history)."""
    return select(ReportSignoff).where(ReportSignoff.job_id == job_id).order_by(ReportSignoff.seq)


def lock_job(job_id: uuid.UUID) -> Select[uuid.UUID]:
    """The job row, locked for the transaction (sign-offs of one job are taken in turn)."""
    return select(Job.id).where(Job.id == job_id).with_for_update()


def revoke_key(prefix: str) -> Update:
    return (
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def upload_of_tenant(upload_id: uuid.UUID, tenant_id: str) -> Select[Upload]:
    return select(Upload).where(Upload.id == upload_id, Upload.tenant_id == tenant_id)


def upload_session_of_tenant(
    session_id: uuid.UUID, tenant_id: str, *, lock: bool = False
) -> Select[UploadSession]:
    """A tenant's upload session; ``lock``: locked for the transaction, or no row while another
    transaction holds it (a second ``complete`` is refused rather than queued)."""
    q = select(UploadSession).where(
        UploadSession.id == session_id, UploadSession.tenant_id == tenant_id
    )
    return q.with_for_update(skip_locked=True) if lock else q


def advance_upload_session(session_id: uuid.UUID, start: int, end: int) -> Update:
    """Record the chunk ``[start, end)`` only if the session has exactly ``start`` bytes and is
    open (two clients sending the same chunk: one moves it, the other sees it moved)."""
    return (
        update(UploadSession)
        .where(
            UploadSession.id == session_id,
            UploadSession.received == start,
            UploadSession.upload_id.is_(None),
        )
        .values(received=end, updated_at=func.now())
    )


def stale_upload_sessions(older_than_s: float, limit: int = 100) -> Select[UploadSession]:
    """Sessions with no chunk for ``older_than_s`` (completed ones included), locked, oldest first."""
    cutoff = func.now() - timedelta(seconds=older_than_s)
    return (
        select(UploadSession)
        .where(UploadSession.updated_at < cutoff)
        .order_by(UploadSession.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def job_of_tenant(
    job_id: uuid.UUID, tenant_id: str
) -> tuple[Select[Job], dict[str, uuid.UUID | str]]:
    return JOB_OF_TENANT, {"job_id": job_id, "tenant_id": tenant_id}


def active_jobs_of_tenant(tenant_id: str) -> Select[int]:
    """How many jobs of the tenant are queued or running."""
    return select(func.count()).where(
        Job.tenant_id == tenant_id,
        Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
    )


def lock_tenant_submits(tenant_id: str) -> Select[object]:
    """A transaction-scoped advisory lock: one tenant's submits count their active jobs in turn."""
    return select(func.pg_advisory_xact_lock(func.hashtext(literal("submit:" + tenant_id))))


def job_by_idempotency_key(tenant_id: str, key: str) -> Select[Job]:
    return select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)


def list_jobs(
    tenant_id: str,
    *,
    state: str | None,
    external_sample_id: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    cursor: tuple[datetime, uuid.UUID] | None,
    limit: int,
    report_status: str | None = None,
    oldest_first: bool = False,
) -> Select[Job]:
    """One page of a tenant's jobs, keyset-paged on ``(created_at, id)``.

    ``report_status`` ``preliminary`` is a succeeded job nobody has signed; ``final`` and
    ``amended`` are the status of the latest sign-off (``jobs.report_status``).
    """
    q = select(Job).where(Job.tenant_id == tenant_id)
    if state:
        q = q.where(Job.state == state)
    if report_status == "preliminary":
        q = q.where(Job.state == JobState.SUCCEEDED.value, Job.report_status.is_(None))
    elif report_status:
        q = q.where(Job.report_status == report_status)
    if external_sample_id:
        q = q.where(Job.external_sample_id == external_sample_id)
    if created_after:
        q = q.where(Job.created_at >= created_after)
    if created_before:
        q = q.where(Job.created_at < created_before)
    if cursor:
        # a row comparison, not "a < x OR (a = x AND b < y)": Postgres reads it as a range
        # of the (tenant_id, ..., created_at, id) indexes and starts the scan at the cursor
        key, at = tuple_(Job.created_at, Job.id), tuple_(literal(cursor[0]), literal(cursor[1]))
        q = q.where(key > at if oldest_first else key < at)
    if oldest_first:
        return q.order_by(Job.created_at.asc(), Job.id.asc()).limit(limit)
    return q.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)


def cancel_job(job_id: uuid.UUID, tenant_id: str) -> Update:
    return (
        update(Job)
        .where(
            Job.id == job_id,
            Job.tenant_id == tenant_id,
            Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        )
        .values(
            state=JobState.CANCELED.value,
            finished_at=func.now(),
            lease_owner=None,
            lease_expires_at=None,
            error_code="canceled",
            error_detail="canceled by the client",
        )
        .returning(Job)
    )


def claim_job(job_id: uuid.UUID, phase: Phase, worker: str, lease_s: int) -> Update:
    """Take a queued job for ``phase``; returns the claimed row."""
    stages = ANALYSIS_STAGES if phase == Phase.ANALYSIS else (JobStage.REPORTING.value,)
    return (
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.QUEUED.value, Job.stage.in_(stages))
        .values(
            state=JobState.RUNNING.value,
            attempts=Job.attempts + 1,
            stage_attempts=Job.stage_attempts + 1,
            lease_owner=worker,
            lease_expires_at=func.now() + timedelta(seconds=lease_s),
            started_at=func.coalesce(Job.started_at, func.now()),
        )
        .returning(Job)
    )


def owned_update(job_id: uuid.UUID, attempt: int, **values: object) -> Update:
    """An update that applies only while ``attempt`` still owns the running job (fencing)."""
    return (
        update(Job)
        .where(Job.id == job_id, Job.attempts == attempt, Job.state == JobState.RUNNING.value)
        .values(**values)
        .returning(Job)
    )


def expired_leases(limit: int = 100) -> Select[Job]:
    return (
        select(Job)
        .where(Job.state == JobState.RUNNING.value, Job.lease_expires_at < func.now())
        .order_by(Job.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def dead_holders(silent_s: float, limit: int = 100) -> Select[Job]:
    """Running jobs whose lease holder has sent no heartbeat for ``silent_s`` seconds."""
    silent = select(Worker.id).where(Worker.last_seen < func.now() - timedelta(seconds=silent_s))
    return (
        select(Job)
        .where(Job.state == JobState.RUNNING.value, Job.lease_owner.in_(silent))
        .order_by(Job.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def worker_heartbeat(worker_id: str, queues: str) -> Insert:
    """Insert or refresh a worker's heartbeat row."""
    from sqlalchemy.dialects.postgresql import insert

    stmt = insert(Worker).values(id=worker_id, queues=queues[:255])
    return stmt.on_conflict_do_update(
        index_elements=[Worker.id], set_={"last_seen": func.now(), "queues": stmt.excluded.queues}
    )


def forget_worker(worker_id: str) -> Delete:
    return delete(Worker).where(Worker.id == worker_id)


def purge_silent_workers(older_than: timedelta) -> Delete:
    """Heartbeat rows of workers gone for a long time and holding no running job."""
    holding = exists().where(Job.lease_owner == Worker.id, Job.state == JobState.RUNNING.value)
    return delete(Worker).where(Worker.last_seen < func.now() - older_than, ~holding)


def stale_queued(older_than_s: int, limit: int = 100) -> Select[Job]:
    """Queued jobs untouched for a while with no task message waiting in the outbox."""
    pending = exists().where(
        OutboxMessage.job_id == Job.id,
        OutboxMessage.kind == OutboxKind.TASK.value,
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.dead_at.is_(None),
    )
    return (
        select(Job)
        .where(
            Job.state == JobState.QUEUED.value,
            Job.updated_at < func.now() - timedelta(seconds=older_than_s),
            ~pending,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def pending_outbox(kind: str, limit: int = 100) -> Select[OutboxMessage]:
    return (
        select(OutboxMessage)
        .where(
            OutboxMessage.kind == kind,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.dead_at.is_(None),
            OutboxMessage.available_at <= func.now(),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def jobs_by_state() -> Select[str, int]:
    return select(Job.state, func.count()).group_by(Job.state)


def stage_durations() -> CompoundSelect[str, float, int]:
    """Sum and count of each stage's recorded duration over finished jobs."""
    rows = []
    for stage in JobStage:
        col = Job.timings[stage.value].as_float()
        rows.append(
            select(
                literal(stage.value).label("stage"),
                func.coalesce(func.sum(col), 0.0),
                func.count(col),
            ).where(Job.state.in_([s.value for s in TERMINAL_STATES]))
        )
    from sqlalchemy import union_all

    return union_all(*rows)


def purge_sent_outbox(older_than: timedelta) -> Delete:
    return delete(OutboxMessage).where(OutboxMessage.sent_at < func.now() - older_than)
