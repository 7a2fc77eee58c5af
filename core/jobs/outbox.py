"""The transactional outbox: messages written with the job change, sent after commit.

Two kinds: ``task`` (publish a Celery task) and ``webhook`` (POST to a callback URL).
The relay (``medgemma-spatial relay``) sends them; the reconciler re-sends jobs
the broker lost and sends back jobs whose lease expired.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import repositories as repo
from core.db.models import Job, JobKind, JobState, OutboxKind, OutboxMessage
from core.enums import Phase
from core.jobs import webhooks
from core.jsonable import JSONObject, JSONValue

log = logging.getLogger(__name__)

TASKS = {
    # (kind, phase) -> (celery task name, queue)
    (JobKind.SPATIAL.value, Phase.ANALYSIS): ("mgs.analysis", "analysis"),
    (JobKind.SPATIAL.value, Phase.REPORT): ("mgs.report", "report"),
}


def register_kind(kind: str, phase: Phase, task: str, queue: str) -> None:
    """Add a job kind's task (modules named in ``MGS_WORKER_IMPORTS`` do, e.g. test-only kinds)."""
    TASKS[(kind, phase)] = (task, queue)


def known_kinds() -> set[str]:
    return {k for k, _ in TASKS}


def import_plugins(settings: Settings) -> None:
    """Import the modules named in ``MGS_WORKER_IMPORTS`` (they register job kinds and tasks)."""
    import importlib

    for name in settings.worker_imports.split(","):
        if name.strip():
            importlib.import_module(name.strip())


Publish = Callable[[str, str, str, str], None]  # (task name, queue, job id, message id)
Post = Callable[[str, bytes, dict[str, str]], int]  # (url, body, headers) -> HTTP status


def phase_of(job: Job) -> Phase:
    return Phase.of_stage(job.stage)


def add_task(session: Session | AsyncSession, job: Job, delay_s: float = 0.0) -> OutboxMessage:
    """Queue the task for the job's current phase (sync or async session: ``add`` only)."""
    name, queue = TASKS[(job.kind, phase_of(job))]
    msg = OutboxMessage(
        kind=OutboxKind.TASK.value,
        job_id=job.id,
        payload={"task": name, "queue": queue, "job_id": str(job.id)},
    )
    if delay_s:
        msg.available_at = datetime.now(UTC) + timedelta(seconds=delay_s)
    session.add(msg)
    return msg


def report_outcome(job: Job) -> JSONObject | None:
    """A succeeded job's report in brief: ``{"narrative": "written"}``, or
    ``{"narrative": "withheld", "reason": {"code", "detail"}}`` when the report was written
    without a narrative (``prompt_leakage``: the leakage gate refused the prompt). ``None``
    for a job that has no report (yet)."""
    rep = (job.summary or {}).get("report")
    if job.state != JobState.SUCCEEDED.value or not isinstance(rep, dict):
        return None
    narrative = rep.get("narrative")
    if not isinstance(narrative, dict) or narrative.get("status") != "withheld":
        return {"narrative": "written", "reason": None}
    return {
        "narrative": "withheld",
        "reason": {
            "code": str(narrative.get("code") or "narrative_withheld"),
            "detail": str(narrative.get("detail") or ""),
        },
    }


def job_event(job: Job) -> JSONObject:
    """The webhook body for a job that reached a terminal state."""
    error: JSONValue = (
        {"code": job.error_code, "detail": job.error_detail}
        if job.state != JobState.SUCCEEDED.value
        else None
    )
    return {
        "type": f"job.{job.state}",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "id": str(job.id),
            "state": job.state,
            "stage": job.stage,
            "external_sample_id": job.external_sample_id,
            "attempts": job.attempts,
            "error": error,
            "report": report_outcome(job),
        },
    }


def add_webhook(session: Session | AsyncSession, job: Job) -> OutboxMessage | None:
    if not job.callback_url:
        return None
    msg = OutboxMessage(
        kind=OutboxKind.WEBHOOK.value,
        job_id=job.id,
        payload={"url": job.callback_url, "tenant_id": job.tenant_id, "event": job_event(job)},
    )
    session.add(msg)
    return msg


def add_event(session: Session | AsyncSession, job: Job, event: JSONObject) -> OutboxMessage | None:
    """Queue any event (e.g. ``report.signed``) to the job's callback URL, if it has one."""
    if not job.callback_url:
        return None
    msg = OutboxMessage(
        kind=OutboxKind.WEBHOOK.value,
        job_id=job.id,
        payload={"url": job.callback_url, "tenant_id": job.tenant_id, "event": event},
    )
    session.add(msg)
    return msg


def publish_pending(session: Session, publish: Publish, limit: int = 100) -> int:
    """Publish due task messages; returns how many. The caller commits."""
    msgs = session.execute(repo.pending_outbox(OutboxKind.TASK.value, limit)).scalars().all()
    for m in msgs:
        try:
            p = m.payload
            publish(str(p["task"]), str(p["queue"]), str(p["job_id"]), str(m.id))
        except Exception as e:
            m.attempts += 1
            m.last_error = repr(e)[:2000]
            m.available_at = datetime.now(UTC) + timedelta(seconds=min(2**m.attempts, 60))
            log.warning("publish of outbox %s failed: %r", m.id, e)
            continue
        m.sent_at = datetime.now(UTC)
    return len(msgs)


def deliver_webhooks(session: Session, post: Post, settings: Settings, limit: int = 20) -> int:
    """POST due webhooks (signed); failures back off exponentially. The caller commits."""
    msgs = session.execute(repo.pending_outbox(OutboxKind.WEBHOOK.value, limit)).scalars().all()
    for m in msgs:
        msg_id = f"msg_{m.id}"
        body = json.dumps(m.payload["event"], separators=(",", ":")).encode()
        m.attempts += 1
        try:
            url = str(m.payload["url"])
            webhooks.check_callback_url(url, settings.webhook_allow_private)
            secret = _secret(session, str(m.payload["tenant_id"]))
            status = post(url, body, webhooks.headers(secret, msg_id, body))
            ok = 200 <= status < 300
            err = None if ok else f"HTTP {status}"
        except Exception as e:
            ok, err = False, repr(e)[:2000]
        if ok:
            m.sent_at = datetime.now(UTC)
            continue
        m.last_error = err
        if m.attempts >= settings.webhook_max_attempts:
            m.dead_at = datetime.now(UTC)
            log.warning(
                "webhook %s to %s given up after %d attempts: %s",
                msg_id,
                m.payload["url"],
                m.attempts,
                err,
            )
        else:
            m.available_at = datetime.now(UTC) + timedelta(seconds=min(2 ** (m.attempts - 1), 3600))
    return len(msgs)


def _secret(session: Session, tenant_id: str) -> str:
    from core.jobs.keys import webhook_secret

    return webhook_secret(session, tenant_id)


def reconcile(
    session: Session, settings: Settings, check_heartbeats: bool = True
) -> dict[str, int]:
    """Take back jobs whose holder is gone (lease expired, or the worker's heartbeat silent
    for ``MGS_WORKER_DEAD_AFTER_S``) and re-send queued jobs the broker lost.

    ``check_heartbeats=False`` while the database has just come back: no worker could write
    its heartbeat during the outage, so silence then says nothing.
    """
    from core.jobs import lifecycle

    counts = {"requeued": 0, "exhausted": 0, "resent": 0, "dead_worker": 0}
    for job in session.execute(repo.expired_leases()).scalars().all():
        reason = (
            f"the lease of {job.lease_owner} expired ({settings.job_lease_s} s without progress)"
        )
        counts[lifecycle.reclaim(session, job, reason, settings)] += 1
    if check_heartbeats:
        silent = settings.worker_dead_after_s
        for job in session.execute(repo.dead_holders(silent)).scalars().all():
            reason = f"worker {job.lease_owner} sent no heartbeat for over {silent:g} s"
            counts[lifecycle.reclaim(session, job, reason, settings)] += 1
            counts["dead_worker"] += 1
        session.execute(repo.purge_silent_workers(timedelta(hours=1)))
    for job in session.execute(repo.stale_queued(settings.job_requeue_after_s)).scalars().all():
        add_task(session, job)
        session.execute(update(Job).where(Job.id == job.id).values(updated_at=func.now()))
        counts["resent"] += 1
    return counts
