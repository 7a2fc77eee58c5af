"""A worker's use cases: claim, progress (heartbeat), finish, fail. Fenced by attempt number.

Every write after the claim applies only while the claiming attempt still owns
the running job, so a stale worker (lease expired, job canceled or taken by a
newer attempt) can never overwrite a newer one. The task boundary commits.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import repositories as repo
from core.db.models import Job, JobStage, JobState
from core.jobs import outbox
from core.jobs.errors import LeaseLost
from core.jobs.sanitize import public_detail

log = logging.getLogger(__name__)


def _stored_detail(job_id: uuid.UUID, attempt: int | None, code: str, detail: str) -> str:
    """What the job keeps (and its tenant reads): code + one sentence. The full text is logged."""
    public = public_detail(code, detail)
    log.warning("job %s attempt %s: %s: %s", job_id, attempt, code, detail)
    return public


def claim(
    session: Session, job_id: uuid.UUID, phase: str, worker: str, settings: Settings
) -> Job | None:
    """Take the job for ``phase``; ``None`` when it is not queued for that phase (a duplicate)."""
    job = session.execute(
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
    timings: dict[str, Any] | None = None,
) -> Job:
    """Record stage and progress and renew the lease; :class:`LeaseLost` if no longer owner."""
    values: dict[str, Any] = {
        "stage": stage,
        "progress": max(0.0, min(1.0, progress)),
        "lease_expires_at": func.now() + timedelta(seconds=settings.job_lease_s),
    }
    if timings is not None:
        values["timings"] = timings
    job = session.execute(repo.owned_update(job_id, attempt, **values)).scalar_one_or_none()
    if job is None:
        raise LeaseLost(f"attempt {attempt} no longer owns job {job_id}")
    return job


def finish_analysis(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    prefix: str,
    summary: dict[str, Any],
    timings: dict[str, Any],
) -> Job:
    """Commit the analysis artifacts of ``attempt`` and queue the report stage."""
    job = session.execute(
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
    timings: dict[str, Any],
    report_prefix: str | None = None,
    analysis_prefix: str | None = None,
    summary: dict[str, Any] | None = None,
) -> Job:
    values: dict[str, Any] = {
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
    job = session.execute(repo.owned_update(job_id, attempt, **values)).scalar_one_or_none()
    if job is None:
        raise LeaseLost(f"attempt {attempt} no longer owns job {job_id}")
    outbox.add_webhook(session, job)
    return job


def fail(session: Session, job_id: uuid.UUID, attempt: int, code: str, detail: str) -> Job | None:
    """Fail the job with ``{code, detail}`` (no-op returning ``None`` if no longer owner)."""
    job = session.execute(
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


def release(session: Session, job_id: uuid.UUID, attempt: int, detail: str) -> Job | None:
    """After an unexpected error: send the job back for another attempt, or fail it after N."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.attempts != attempt or job.state != JobState.RUNNING.value:
        return None
    if job.stage_attempts >= job.max_attempts:
        return fail(
            session,
            job_id,
            attempt,
            "attempts_exhausted",
            f"the {job.stage} stage failed {job.stage_attempts} times; last error: {detail}",
        )
    job.state = JobState.QUEUED.value
    if job.stage != JobStage.REPORTING.value:
        job.stage = JobStage.VALIDATING.value
    job.lease_owner = None
    job.lease_expires_at = None
    job.error_detail = _stored_detail(job_id, attempt, "retrying", detail)
    job.updated_at = datetime.now(UTC)
    outbox.add_task(
        session, job, delay_s=min(2.0**job.stage_attempts, 60.0)
    )  # back off between tries
    return job


def hand_back(session: Session, job_id: uuid.UUID, attempt: int) -> Job | None:
    """A stopping worker returns the job: queued again at once, the claim not counted
    against ``max_attempts`` (the fencing token ``attempts`` still moves on)."""
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.attempts != attempt or job.state != JobState.RUNNING.value:
        return None
    job.state = JobState.QUEUED.value
    if job.stage != JobStage.REPORTING.value:
        job.stage = JobStage.VALIDATING.value
    job.stage_attempts = max(0, job.stage_attempts - 1)
    job.lease_owner = None
    job.lease_expires_at = None
    job.updated_at = datetime.now(UTC)
    outbox.add_task(session, job)
    return job


def _terminal(session: Session, job: Job, state: JobState, code: str, detail: str) -> None:
    job.state = state.value
    job.error_code = code
    job.error_detail = _stored_detail(job.id, job.attempts, code, detail)
    job.finished_at = datetime.now(UTC)
    job.lease_owner = None
    job.lease_expires_at = None
    outbox.add_webhook(session, job)
