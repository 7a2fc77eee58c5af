"""Pathologist sign-off of a job's report: sign, history, status (async; the request commits).

A succeeded job's report is ``preliminary``. A reviewer key signs it ``final`` once;
later sign-offs are ``amended`` and need a comment (the addendum). The signed content
(``report.json``) never changes: each record stores its sha256. Records are append-only
(the table refuses UPDATE and DELETE) and numbered per job.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import repositories as repo
from core.db.models import Job, JobState, KeyRole, ReportSignoff, SignoffStatus
from core.errors import BadOption
from core.jobs import outbox, service
from core.jobs.errors import Conflict, Forbidden
from core.jobs.keys import Caller
from core.jsonable import JSONObject, to_jsonable
from core.report.signoff import ReportStatus, Signoff, content_sha256, report_status
from core.storage import ObjectStore

MAX_COMMENT = 4000


def as_record(row: ReportSignoff) -> Signoff:
    return Signoff(
        seq=row.seq,
        reviewer=row.reviewer,
        key_id=str(row.key_id),
        status=row.status,
        comment=row.comment,
        content_sha256=row.content_sha256,
        signed_at=row.created_at,
    )


async def history(session: AsyncSession, job: Job) -> list[Signoff]:
    """The job's sign-offs, oldest first."""
    rows = (await session.execute(repo.signoffs_of_job(job.id))).scalars().all()
    return [as_record(r) for r in rows]


async def signed_content(store: ObjectStore, job: Job) -> bytes:
    """The bytes a sign-off covers: the job's ``report.json`` artifact."""
    if job.state != JobState.SUCCEEDED.value:
        raise Conflict(
            f"job {job.id} is {job.state}; only a succeeded job's report can be signed",
            code="job_not_succeeded",
        )
    key = f"{(job.report_prefix or '').rstrip('/')}/report.json"
    if not job.report_prefix or await anyio.to_thread.run_sync(store.size, key) is None:
        raise Conflict(f"job {job.id} has no report to sign", code="report_missing")
    return await anyio.to_thread.run_sync(read_all, store, key)


def read_all(store: ObjectStore, key: str) -> bytes:
    """A whole (small) object's bytes; blocking."""
    return b"".join(store.iter_bytes(key))


def signed_event(job: Job, record: Signoff, status: ReportStatus) -> JSONObject:
    """The webhook body sent on each sign-off."""
    return {
        "type": "report.signed",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": str(job.id),
            "external_sample_id": job.external_sample_id,
            "report_status": status.value,
            "signoff": to_jsonable(record.as_dict()),
        },
    }


async def sign_report(
    session: AsyncSession,
    store: ObjectStore,
    caller: Caller,
    job_id: uuid.UUID,
    *,
    reviewer: str,
    status: str,
    comment: str | None,
    idempotency_key: str | None = None,
    repeat_window_s: float = 0.0,
) -> tuple[Signoff, ReportStatus, bool]:
    """Append one sign-off to the caller's job ``job_id`` and queue its webhook.

    Returns ``(record, report status, replayed)``. A retry appends nothing and fires no
    webhook: it gets the earlier record back with ``replayed`` true. A retry is the same
    ``idempotency_key`` with the same body (another body: :class:`Conflict`
    ``idempotency_conflict``), or, without a key, a request identical to the job's latest
    sign-off (same API key, reviewer, status and comment) within ``repeat_window_s`` seconds.

    Raises :class:`NotFound` for a job of another tenant (or none), then
    :class:`Forbidden` for a non-reviewer key, :class:`Conflict` for a job that has
    not succeeded, a second ``final`` or an ``amended`` before any ``final``, and
    :class:`BadOption` for an amendment without a comment.
    """
    job = await service.get_job(
        session, caller.tenant_id, job_id
    )  # 404 before 403: ids leak nothing
    if caller.role != KeyRole.REVIEWER.value:
        raise Forbidden(
            f"this API key's role is {caller.role}; signing needs a reviewer key "
            "(medgemma-spatial keys create --tenant ... --role reviewer)",
            code="forbidden_role",
        )
    reviewer = reviewer.strip()
    comment = (comment or "").strip() or None
    if not reviewer:
        raise BadOption("reviewer must name the pathologist who signs", code="reviewer_missing")
    if status == SignoffStatus.AMENDED.value and not comment:
        raise BadOption(
            "an amendment needs a comment: the addendum text", code="amendment_needs_comment"
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise BadOption("Idempotency-Key must be 1 to 255 characters")
    content = await signed_content(store, job)
    await session.execute(repo.lock_job(job.id))  # one sign-off of a job at a time
    rows = (await session.execute(repo.signoffs_of_job(job.id))).scalars().all()
    past = [as_record(r) for r in rows]
    digest = request_hash(caller.key_id, reviewer, status, comment)
    earlier = await _retried(session, rows, idempotency_key, digest, repeat_window_s)
    if earlier is not None:
        return as_record(earlier), report_status(past), True
    if status == SignoffStatus.FINAL.value and past:
        raise Conflict(
            f"the report is already {report_status(past).value}; add an addendum with "
            "status 'amended' and a comment",
            code="report_already_signed",
        )
    if status == SignoffStatus.AMENDED.value and not past:
        raise Conflict(
            "the report is preliminary; sign it 'final' before amending it",
            code="report_not_final",
        )
    row = ReportSignoff(
        job_id=job.id,
        tenant_id=job.tenant_id,
        seq=len(past) + 1,
        reviewer=reviewer,
        key_id=caller.key_id,
        status=status,
        comment=comment,
        content_sha256=content_sha256(content),
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    record = as_record(row)
    new_status = report_status([*past, record])
    job.report_status = new_status.value  # the list filters on it
    job.updated_at = datetime.now(
        UTC
    )  # the job's ETag changes with every sign-off, amended twice too
    outbox.add_event(session, job, signed_event(job, record, new_status))
    await session.flush()
    return record, new_status, False


def request_hash(key_id: uuid.UUID, reviewer: str, status: str, comment: str | None) -> str:
    """What makes two sign-off requests the same: the signing key and the normalised body."""
    body = json.dumps([str(key_id), reviewer, status, comment], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


async def _retried(
    session: AsyncSession,
    rows: Sequence[ReportSignoff],
    idempotency_key: str | None,
    digest: str,
    repeat_window_s: float,
) -> ReportSignoff | None:
    """The earlier record this request repeats, if it is a retry (the job row is locked)."""
    if idempotency_key is not None:
        for row in rows:
            if row.idempotency_key == idempotency_key:
                if row.request_hash != digest:
                    raise Conflict(
                        "this Idempotency-Key was used with a different sign-off (key, reviewer, "
                        "status or comment)",
                        code="idempotency_conflict",
                    )
                return row
        return None
    if not rows or repeat_window_s <= 0:
        return None
    latest = rows[-1]
    if latest.request_hash != digest:
        return None
    now = (await session.execute(select(func.now()))).scalar_one()
    return latest if (now - latest.created_at).total_seconds() <= repeat_window_s else None
