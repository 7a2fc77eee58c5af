"""TEST ONLY: the 'test_sleep' job kind, loaded by naming this module in MGS_WORKER_IMPORTS.

It walks the stages sleeping so the lifecycle (claim, progress, leases, fencing, retries,
cancel, webhooks) is tested apart from the science; it runs through the same stage runner
as the real analysis. It is not part of the package: a production worker cannot run it.

Options: ``sleep_s`` (per stage), ``two_stage`` (the analysis hands over to a report phase
that sleeps again, as the real job does), ``fail_code`` (fail with that code), ``crash`` (the process
exits mid-job on attempts up to that number, as a killed worker would), ``raise`` (an
unexpected error on attempts up to that number).
"""

from __future__ import annotations

import json
import os
import time
import uuid

from core.db.models import JobStage
from core.enums import Phase
from core.errors import MGSError
from core.jobs import lifecycle, outbox
from core.jobs.execute import Stage, run_stage
from core.storage import upload_dir

KIND = "test_sleep"
TASK = "mgs.test_sleep"

REPORT_TASK = "mgs.test_sleep_report"

outbox.register_kind(KIND, Phase.ANALYSIS, TASK, "analysis")
# the report phase: a job sent back at the reporting stage sleeps through it once more
outbox.register_kind(KIND, Phase.REPORT, REPORT_TASK, "report")


def _sleep_body(st: Stage, stages: tuple[str, ...]) -> str:
    options, tracker, attempt = st.options, st.tracker, st.attempt
    sleep_s = float(options.get("sleep_s", 0.2))
    steps = max(5, int(sleep_s / 0.2))  # a step (and an ownership check) every <= 0.2 s
    for stage in stages:
        for i in range(steps + 1):
            tracker(stage, i / steps)
            if stage == stages[-1] and i == 2:
                if attempt <= int(options.get("crash", 0)):
                    os._exit(17)
                if attempt <= int(options.get("raise", 0)):
                    raise RuntimeError(f"test job raised on attempt {attempt}")
            time.sleep(sleep_s / steps)
            tracker.last_write = 0.0  # every step checks ownership
    if options.get("fail_code"):
        raise MGSError("test job failed on request", code=str(options["fail_code"]))
    out = st.tmp / "out"
    out.mkdir()
    (out / "sleep.json").write_text(json.dumps({"attempt": attempt, "worker": st.worker}))
    tracker.check()
    upload_dir(st.store, out, st.prefix)
    if options.get("two_stage") and stages[-1] != JobStage.REPORTING.value:
        with st.tx() as s:  # on to the report phase, as the real analysis goes
            lifecycle.finish_analysis(s, st.job_id, attempt, st.prefix, {}, tracker.close())
        return "analyzed"
    with st.tx() as s:
        lifecycle.succeed(
            s,
            st.job_id,
            attempt,
            timings=tracker.close(),
            analysis_prefix=None if stages[-1] == JobStage.REPORTING.value else st.prefix,
            report_prefix=st.prefix,
        )
    return "succeeded"


def run_test_sleep_job(tx, store, settings, job_id: uuid.UUID, worker: str) -> str:  # type: ignore[no-untyped-def]
    stages = (JobStage.VALIDATING.value, JobStage.ANALYZING.value)
    return run_stage(
        tx, store, settings, job_id, worker, "analysis", lambda st: _sleep_body(st, stages)
    )


def run_test_sleep_report(tx, store, settings, job_id: uuid.UUID, worker: str) -> str:  # type: ignore[no-untyped-def]
    stages = (JobStage.REPORTING.value,)
    return run_stage(
        tx, store, settings, job_id, worker, "report", lambda st: _sleep_body(st, stages)
    )


def _register_task() -> None:
    try:
        from worker.celery_app import app
        from worker.tasks import job_task
    except ImportError:  # the service extra is not installed
        return
    job_task(app, TASK, run_test_sleep_job)
    job_task(app, REPORT_TASK, run_test_sleep_report)


_register_task()
