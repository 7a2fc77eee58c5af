"""The job state machine: every transition of a job, for workers, the reconciler and the API.

claim, heartbeat (progress), finish_analysis, succeed, fail, release (unexpected error),
requeue_transient (a dependency outage), hand_back (a stopping worker), reclaim (a dead
holder), cancel (the client). Fenced by attempt number.

Every write after the claim applies only while the claiming attempt still owns
the running job, so a stale worker (lease expired, job canceled or taken by a
newer attempt) can never overwrite a newer one. The task boundary commits.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import repositories as repo
from core.db.models import Job, JobStage, JobState
from core.enums import Phase
from core.jobs import outbox
from core.jobs.errors import LeaseLost
from core.jobs.sanitize import public_detail
from core.jsonable import JSONObject

log = logging.getLogger(__name__)


def _stored_detail(job_id: uuid.UUID, attempt: int | None, code: str, detail: str) -> str:
    """What the job keeps (and its tenant reads): code + one sentence. The full text is logged."""
    public = public_detail(code, detail)
    log.warning("job %s attempt %s: %s: %s", job_id, attempt, code, detail)
    return public


def claim(
    session: Session, job_id: uuid.UUID, phase: Phase, worker: str, settings: Settings
) -> Job | None:
    """Take the job for ``phase``; ``None`` when it is not queued for that phase (a duplicate)."""
    job: Job | None = session.execute(
        repo.claim_job(job_id, phase, worker, settings.job_lease_s)
    ).scalar_one_or_none()
    if job is None:
        return None
    if job.stage_attempts > job.max_attempts:
        _terminal(
            session,
            job,
            JobState.FAILED,
            "attempts_exhausted",
            f"the {job.stage} stage was tried {job.max_attempts} times without finishing",
        )
        return None
    return job


def heartbeat(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    stage: str,
    progress: float,
    settings: Settings,
    timings: JSONObject | None = None,
) -> Job:
    """Record stage and progress and renew the lease; :class:`LeaseLost` if no longer owner."""
    values: dict[str, object] = {
        "stage": stage,
        "progress": max(0.0, min(1.0, progress)),
        "lease_expires_at": func.now() + timedelta(seconds=settings.job_lease_s),
    }
    if timings is not None:
        values["timings"] = timings
    job: Job | None = session.execute(
        repo.owned_update(job_id, attempt, **values)
    ).scalar_one_or_none()
    if job is None:
        raise LeaseLost(f"attempt {attempt} no longer owns job {job_id}")
    return job


def finish_analysis(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    prefix: str,
    summary: JSONObject,
    timings: JSONObject,
) -> Job:
    """Commit the analysis artifacts of ``attempt`` and queue the report stage."""
    job: Job | None = session.execute(
        repo.owned_update(
            job_id,
            attempt,
            state=JobState.QUEUED.value,
            stage=JobStage.REPORTING.value,
            stage_attempts=0,
            progress=0.7,
            analysis_prefix=prefix,
            summary=summary,
            timings=timings,
            lease_owner=None,
            lease_expires_at=None,
        )
    ).scalar_one_or_none()
    if job is None:
        raise LeaseLost(f"attempt {attempt} no longer owns job {job_id}")
    outbox.add_task(session, job)
    return job


def succeed(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    *,
    timings: JSONObject,
    report_prefix: str | None = None,
    analysis_prefix: str | None = None,
    summary: JSONObject | None = None,
) -> Job:
    values: dict[str, object] = {
        "state": JobState.SUCCEEDED.value,
        "progress": 1.0,
        "timings": timings,
        "finished_at": func.now(),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if report_prefix is not None:
        values["report_prefix"] = report_prefix
    if analysis_prefix is not None:
        values["analysis_prefix"] = analysis_prefix
    if summary is not None:
        values["summary"] = summary
    job: Job | None = session.execute(
        repo.owned_update(job_id, attempt, **values)
    ).scalar_one_or_none()
    if job is None:
        raise LeaseLost(f"attempt {attempt} no longer owns job {job_id}")
    outbox.add_webhook(session, job)
    return job


def fail(session: Session, job_id: uuid.UUID, attempt: int, code: str, detail: str) -> Job | None:
    """Fail the job with ``{code, detail}`` (no-op returning ``None`` if no longer owner)."""
    job: Job | None = session.execute(
        repo.owned_update(
            job_id,
            attempt,
            state=JobState.FAILED.value,
            error_code=code,
            error_detail=_stored_detail(job_id, attempt, code, detail),
            finished_at=func.now(),
            lease_owner=None,
            lease_expires_at=None,
        )
    ).scalar_one_or_none()
    if job is not None:
        outbox.add_webhook(session, job)
    return job


def release(
    session: Session, job_id: uuid.UUID, attempt: int, detail: str, settings: Settings | None = None
) -> Job | None:
    """After an unexpected error: send the job back for another attempt, or fail it after N."""
    job = _owned(session, job_id, attempt)
    if job is None:
        return None
    if job.stage_attempts >= job.max_attempts:
        return fail(
            session,
            job_id,
            attempt,
            "attempts_exhausted",
            f"the {job.stage} stage failed {job.stage_attempts} times; last error: {detail}",
        )
    _requeue(session, job, detail=detail, delay_s=min(2.0**job.stage_attempts, 60.0))
    return job


def requeue_transient(
    session: Session, job_id: uuid.UUID, attempt: int, detail: str, settings: Settings
) -> Job | None:
    """A dependency (database, object storage) was unreachable: queue the job again without
    using one of its attempts, backing off; fail with ``dependency_unavailable`` after
    ``MGS_TRANSIENT_MAX_TRIES`` such tries."""
    job = _owned(session, job_id, attempt)
    if job is None:
        return None
    job.transient_tries += 1
    if job.transient_tries > settings.transient_max_tries:
        return fail(
            session,
            job_id,
            attempt,
            "dependency_unavailable",
            f"a service dependency stayed unavailable over {job.transient_tries - 1} tries "
            f"of the {job.stage} stage; last error: {detail}",
        )
    _requeue(
        session,
        job,
        detail=detail,
        count_attempt=False,
        delay_s=min(2.0**job.transient_tries, settings.transient_backoff_max_s),
    )
    return job


def hand_back(session: Session, job_id: uuid.UUID, attempt: int) -> Job | None:
    """A stopping worker returns the job: queued again at once, the claim not counted
    against ``max_attempts`` (the fencing token ``attempts`` still moves on)."""
    job = _owned(session, job_id, attempt)
    if job is None:
        return None
    _requeue(session, job, count_attempt=False)
    return job


def reclaim(session: Session, job: Job, reason: str, settings: Settings) -> str:
    """The reconciler takes back a running job whose holder is gone (lease expired or the
    worker stopped sending heartbeats): queued again, or failed once its attempts are used.

    ``job`` must be locked (``FOR UPDATE``) by the caller. Returns ``"requeued"`` or
    ``"exhausted"``. The dead attempt's writes stay fenced: the next claim moves ``attempts``.
    """
    if job.stage_attempts >= job.max_attempts:
        _terminal(
            session,
            job,
            JobState.FAILED,
            "attempts_exhausted",
            f"the {job.stage} stage did not finish in {job.stage_attempts} attempts; {reason}",
        )
        return "exhausted"
    _requeue(session, job, detail=reason)
    return "requeued"


async def cancel(session: AsyncSession, tenant_id: str, job_id: uuid.UUID) -> Job | None:
    """A client cancels a queued or running job (async API session); ``None`` when the job
    is not queued or running. A running worker notices at its next progress step."""
    job: Job | None = (
        await session.execute(repo.cancel_job(job_id, tenant_id))
    ).scalar_one_or_none()
    if job is not None:
        outbox.add_webhook(session, job)
    return job


def holds_prefix(job: Job | None, prefix: str) -> bool:
    """Whether the job's committed results live under ``prefix`` (never delete those)."""
    return job is not None and prefix in (job.analysis_prefix, job.report_prefix)


def _owned(session: Session, job_id: uuid.UUID, attempt: int) -> Job | None:
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.attempts != attempt or job.state != JobState.RUNNING.value:
        return None
    return job


def _requeue(
    session: Session,
    job: Job,
    *,
    detail: str | None = None,
    count_attempt: bool = True,
    delay_s: float = 0.0,
) -> None:
    """The one way back to ``queued``: the analysis phase restarts at validation, the report
    phase stays; the lease is dropped and a task message goes to the outbox."""
    job.state = JobState.QUEUED.value
    if job.stage != JobStage.REPORTING.value:
        job.stage = JobStage.VALIDATING.value
        job.progress = 0.0
    if not count_attempt:
        job.stage_attempts = max(0, job.stage_attempts - 1)
    job.lease_owner = None
    job.lease_expires_at = None
    if detail is not None:
        job.error_detail = _stored_detail(job.id, job.attempts, "retrying", detail)
    job.updated_at = datetime.now(UTC)
    outbox.add_task(session, job, delay_s=delay_s)


def _terminal(session: Session, job: Job, state: JobState, code: str, detail: str) -> None:
    job.state = state.value
    job.error_code = code
    job.error_detail = _stored_detail(job.id, job.attempts, code, detail)
    job.finished_at = datetime.now(UTC)
    job.lease_owner = None
    job.lease_expires_at = None
    outbox.add_webhook(session, job)
