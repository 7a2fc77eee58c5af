"""What a worker does with one job: claim, work stage by stage, commit fenced results.

``tx`` opens a session and commits it when the block ends (the task boundary
owns the transaction); every step below runs in its own short transaction so
progress and lease renewals are visible at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import JobStage
from core.errors import MGSError
from core.jobs import lifecycle
from core.jobs.errors import LeaseLost
from core.jobs.sandbox import analyse_in_subprocess, validate_in_subprocess
from core.storage import ObjectStore, download_prefix, upload_dir

log = logging.getLogger(__name__)

Tx = Callable[[], AbstractContextManager[Session]]

# overall progress = start + fraction * width, per stage
STAGE_SPAN = {
    JobStage.VALIDATING.value: (0.0, 0.1),
    JobStage.ANALYZING.value: (0.1, 0.6),
    JobStage.REPORTING.value: (0.7, 0.3),
}
REPORT_FILES = ("prompt.txt", "report.json", "report.md", "report.html", "report.pdf")
UPLOAD_SUFFIX = {"h5ad": ".h5ad", "tar.gz": ".tar.gz", "tar": ".tar", "zip": ".zip"}

# Set by the worker on a warm shutdown (SIGTERM): running jobs are handed back at their
# next progress step so another worker takes them at once, not after the lease expires.
STOPPING = threading.Event()


class WorkerStopping(Exception):
    """This worker is shutting down; the job goes back to the queue without using an attempt."""


class Tracker:
    """The ``progress(stage, fraction)`` callback: heartbeat, fencing check, stage timings."""

    def __init__(
        self, tx: Tx, settings: Settings, job_id: uuid.UUID, attempt: int, timings: dict[str, Any]
    ):
        self.tx, self.settings, self.job_id, self.attempt = tx, settings, job_id, attempt
        self.timings = dict(timings)
        self.stage: str | None = None
        self.fraction = 0.0
        self.stage_t0 = time.monotonic()
        self.last_write = 0.0

    def __call__(self, stage: str | None, fraction: float | None) -> None:
        if STOPPING.is_set():
            raise WorkerStopping(
                f"worker stopping; job {self.job_id} attempt {self.attempt} handed back"
            )
        if stage is None or fraction is None:  # no news: heartbeat at most once a second
            if self.stage is None:
                return
            stage, fraction = self.stage, self.fraction
        self.fraction = fraction
        now = time.monotonic()
        changed = stage != self.stage
        if changed:
            if self.stage is not None:
                self.timings[self.stage] = round(now - self.stage_t0, 3)
            self.stage, self.stage_t0 = stage, now
        if not changed and now - self.last_write < 1.0 and fraction < 1.0:
            return
        start, width = STAGE_SPAN.get(stage, (0.0, 1.0))
        with self.tx() as s:
            lifecycle.heartbeat(
                s,
                self.job_id,
                self.attempt,
                stage,
                start + width * max(0.0, min(1.0, fraction)),
                self.settings,
                timings=self.timings,
            )
        self.last_write = now

    def close(self) -> dict[str, Any]:
        if self.stage is not None:
            self.timings[self.stage] = round(time.monotonic() - self.stage_t0, 3)
        return self.timings

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless this attempt still owns the job (and renew the lease)."""
        assert self.stage is not None
        self.last_write = 0.0
        self(self.stage, 1.0)


@contextlib.contextmanager
def _guard(
    tx: Tx, store: ObjectStore, job_id: uuid.UUID, attempt: int, prefix: str
) -> Iterator[None]:
    """Turn failures into job states: input errors fail the job, others retry it."""
    try:
        yield
    except WorkerStopping:
        log.info("job %s attempt %s handed back: the worker is stopping", job_id, attempt)
        store.delete_prefix(prefix)
        with tx() as s:
            lifecycle.hand_back(s, job_id, attempt)
    except LeaseLost:
        log.info(
            "job %s attempt %s lost its lease (canceled or expired); stopping", job_id, attempt
        )
        store.delete_prefix(prefix)
    except MGSError as e:
        store.delete_prefix(prefix)
        with tx() as s:
            lifecycle.fail(s, job_id, attempt, e.code, e.detail)
    except Exception as e:
        log.exception("job %s attempt %s failed unexpectedly", job_id, attempt)
        store.delete_prefix(prefix)
        with tx() as s:
            lifecycle.release(s, job_id, attempt, f"{type(e).__name__}: {e}")


def run_analysis_job(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, worker: str
) -> str:
    """Validate (sandboxed), analyse, upload artifacts to ``jobs/{id}/attempt-{n}/``, queue the report."""
    with tx() as s:
        job = lifecycle.claim(s, job_id, "analysis", worker, settings)
        if job is None:
            return "skipped"
        attempt, options, timings = job.attempts, dict(job.options), dict(job.timings)
        upload = s.get(_upload_model(), job.upload_id)
        assert upload is not None
        upload_key, upload_fmt = upload.storage_key, upload.format
    prefix = f"jobs/{job_id}/attempt-{attempt}"
    tracker = Tracker(tx, settings, job_id, attempt, timings)
    with (
        _guard(tx, store, job_id, attempt, prefix),
        tempfile.TemporaryDirectory(prefix="mgs-job-") as tmp,
    ):
        tracker(JobStage.VALIDATING.value, 0.0)
        sample = Path(tmp) / f"sample{UPLOAD_SUFFIX[upload_fmt]}"
        store.get_file(upload_key, sample)
        validation = validate_in_subprocess(sample, settings)
        tracker(JobStage.VALIDATING.value, 1.0)

        from core.runner import AnalyzeOptions, run_analysis_stage

        out = Path(tmp) / "out"
        out.mkdir()
        a_opts = AnalyzeOptions(
            resolution=float(options.get("resolution", 1.0)),
            seed=int(options.get("seed", settings.default_seed)),
            markers=marker_table_path(options.get("markers"), settings),
            species=str(options.get("species") or "Hs"),
            write_h5ad=True,
        )
        if settings.analysis_memory_mb:
            summary = analyse_in_subprocess(sample, out, a_opts, settings, tracker)
        else:
            summary = run_analysis_stage(sample, out, a_opts, settings, progress=tracker)
        tracker.check()
        upload_dir(store, out, prefix)
        with tx() as s:
            lifecycle.finish_analysis(
                s,
                job_id,
                attempt,
                prefix,
                {"validation": validation, "analysis": _jsonable(summary)},
                tracker.close(),
            )
        return "analyzed"
    return "stopped"


def run_report_job(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, worker: str
) -> str:
    """Download the analysis artifacts, write the report, upload it, mark the job succeeded."""
    with tx() as s:
        job = lifecycle.claim(s, job_id, "report", worker, settings)
        if job is None:
            return "skipped"
        attempt, options, timings = job.attempts, dict(job.options), dict(job.timings)
        summary = dict(job.summary)
        specimen_id = job.external_sample_id
        analysis_prefix = job.analysis_prefix
        assert analysis_prefix
    prefix = f"jobs/{job_id}/attempt-{attempt}"
    tracker = Tracker(tx, settings, job_id, attempt, timings)
    with (
        _guard(tx, store, job_id, attempt, prefix),
        tempfile.TemporaryDirectory(prefix="mgs-job-") as tmp,
    ):
        tracker(JobStage.REPORTING.value, 0.0)
        out = Path(tmp) / "out"
        download_prefix(store, analysis_prefix, out)
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

        from core.report import ReportOptions, write_report

        r_opts = ReportOptions(
            backend=options.get("backend") or settings.report_backend,
            prompt_strategy=options.get("prompt_strategy") or "anti_parroting",
            max_new_tokens=settings.max_new_tokens,
            specimen_id=specimen_id,
        )
        provenance = write_report(
            out, r_opts, settings, progress=lambda f: tracker(JobStage.REPORTING.value, f)
        )
        tracker.check()
        report_dir = Path(tmp) / "report"
        for p in out.rglob("*"):
            if p.is_file() and before.get(p) != p.stat().st_mtime_ns:
                dest = report_dir / p.relative_to(out)
                dest.parent.mkdir(parents=True, exist_ok=True)
                p.replace(dest)
        upload_dir(store, report_dir, prefix)
        with tx() as s:
            lifecycle.succeed(
                s,
                job_id,
                attempt,
                timings=tracker.close(),
                report_prefix=prefix,
                summary={**summary, "report": _jsonable(provenance)},
            )
        return "succeeded"
    return "stopped"


def run_test_sleep_job(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, worker: str
) -> str:
    """TEST ONLY (``MGS_ENABLE_TEST_JOBS``): walks the stages sleeping, to test the lifecycle.

    Options: ``sleep_s`` (per stage), ``fail_code`` (fail with that code),
    ``crash`` (the process exits mid-job, as a killed worker would).
    """
    if not settings.enable_test_jobs:
        return "skipped"
    with tx() as s:
        job = lifecycle.claim(s, job_id, "analysis", worker, settings)
        if job is None:
            return "skipped"
        attempt, options, timings = job.attempts, dict(job.options), dict(job.timings)
    prefix = f"jobs/{job_id}/attempt-{attempt}"
    tracker = Tracker(tx, settings, job_id, attempt, timings)
    with (
        _guard(tx, store, job_id, attempt, prefix),
        tempfile.TemporaryDirectory(prefix="mgs-job-") as tmp,
    ):
        sleep_s = float(options.get("sleep_s", 0.2))
        steps = max(5, int(sleep_s / 0.2))  # a step (and an ownership check) every <= 0.2 s
        for stage in (JobStage.VALIDATING.value, JobStage.ANALYZING.value):
            for i in range(steps + 1):
                tracker(stage, i / steps)
                if (
                    attempt <= int(options.get("crash", 0))
                    and stage == JobStage.ANALYZING.value
                    and i == 2
                ):
                    import os

                    os._exit(17)
                time.sleep(sleep_s / steps)
                tracker.last_write = (
                    0.0  # every step checks ownership (stage boundary for the test)
                )
        if options.get("fail_code"):
            raise MGSError("test job failed on request", code=str(options["fail_code"]))
        out = Path(tmp)
        (out / "sleep.json").write_text(json.dumps({"attempt": attempt, "worker": worker}))
        tracker.check()
        upload_dir(store, out, prefix)
        with tx() as s:
            lifecycle.succeed(
                s,
                job_id,
                attempt,
                timings=tracker.close(),
                analysis_prefix=prefix,
                report_prefix=prefix,
            )
        return "succeeded"
    return "stopped"


def marker_table_path(name: str | None, settings: Settings) -> str | None:
    """A job names a marker table; only tables in ``MGS_MARKER_TABLES_DIR`` (or the shipped default)."""
    if name in (None, "", "default"):
        return None
    import re

    from core.errors import BadOption

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name) or name.startswith("."):
        raise BadOption(f"marker table name {name!r} is not valid")
    if not settings.marker_tables_dir:
        raise BadOption(f"marker table {name!r} is not available on this server (only 'default')")
    root = Path(settings.marker_tables_dir)
    for cand in (root / name, root / f"{name}.tsv"):
        if cand.is_file():
            return str(cand)
    raise BadOption(f"marker table {name!r} is not available on this server")


def _upload_model() -> Any:
    from core.db.models import Upload

    return Upload


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
