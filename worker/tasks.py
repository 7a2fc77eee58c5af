"""Celery tasks: each takes a job id and calls one use case. Safe to run twice (claims are atomic).

A task that cannot reach the database (or storage) to claim its job is retried with backoff,
not acknowledged and forgotten; failures after the claim are the stage runner's to handle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from worker import resources
from worker.celery_app import app

log = logging.getLogger(__name__)

RETRY_MAX = 40  # with the backoff below, about 10 minutes of outage; then the reconciler re-sends
RETRY_BACKOFF_MAX_S = 15.0

Runner = Callable[..., str]


def job_task(celery: Celery, name: str, run: Runner) -> Task:
    """Register task ``name`` that runs ``run(tx, store, settings, job_id, worker)``."""

    @celery.task(name=name, bind=True, max_retries=RETRY_MAX)
    def task(self: Task, job_id: str) -> str:
        from core.jobs.outages import is_transient

        try:
            r = resources.get()
            return run(r.tx, r.store, r.settings, uuid.UUID(job_id), r.worker_id)
        except Exception as e:
            if not is_transient(e):
                raise
            delay = min(RETRY_BACKOFF_MAX_S, 0.5 * 2**self.request.retries)
            log.warning("job %s: dependency unavailable (%r); retry in %.1f s", job_id, e, delay)
            raise self.retry(exc=e, countdown=delay) from e

    return task


def _analysis(*args: Any) -> str:
    from core.jobs.execute import run_analysis_job

    return run_analysis_job(*args)


def _report(*args: Any) -> str:
    from core.jobs.execute import run_report_job

    return run_report_job(*args)


analysis = job_task(app, "mgs.analysis", _analysis)
report = job_task(app, "mgs.report", _report)
