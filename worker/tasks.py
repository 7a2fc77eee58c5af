"""Celery tasks: each takes a job id and calls one use case. Safe to run twice (claims are atomic)."""

from __future__ import annotations

import uuid

from worker import resources
from worker.celery_app import app


@app.task(name="mgs.analysis")
def analysis(job_id: str) -> str:
    from core.jobs.execute import run_analysis_job

    r = resources.get()
    return run_analysis_job(r.tx, r.store, r.settings, uuid.UUID(job_id), r.worker_id)


@app.task(name="mgs.report")
def report(job_id: str) -> str:
    from core.jobs.execute import run_report_job

    r = resources.get()
    return run_report_job(r.tx, r.store, r.settings, uuid.UUID(job_id), r.worker_id)


@app.task(name="mgs.test_sleep")
def test_sleep(job_id: str) -> str:
    """TEST ONLY: the lifecycle test job (refused unless MGS_ENABLE_TEST_JOBS is set)."""
    from core.jobs.execute import run_test_sleep_job

    r = resources.get()
    return run_test_sleep_job(r.tx, r.store, r.settings, uuid.UUID(job_id), r.worker_id)
