"""What a worker does with one job: claim, work stage by stage, commit fenced results.

``tx`` opens a session and commits it when the block ends (the task boundary
owns the transaction); every step below runs in its own short transaction so
progress and lease renewals are visible at once.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import JobStage
from core.enums import Phase
from core.errors import MGSError, PromptLeakage
from core.jobs import lifecycle
from core.jobs.errors import LeaseLost
from core.jobs.outages import is_transient
from core.jobs.sandbox import analyse_in_subprocess, validate_in_subprocess
from core.jsonable import JSONObject, to_jsonable
from core.report.report_json import ReportProvenance, parse_report
from core.storage import ObjectStore, download_prefix, upload_dir

log = logging.getLogger(__name__)

Tx = Callable[[], AbstractContextManager[Session]]

# overall progress = start + fraction * width, per stage
STAGE_SPAN = {
    JobStage.VALIDATING.value: (0.0, 0.1),
    JobStage.ANALYZING.value: (0.1, 0.6),
    JobStage.REPORTING.value: (0.7, 0.3),
}
UPLOAD_SUFFIX = {"h5ad": ".h5ad", "tar.gz": ".tar.gz", "tar": ".tar", "zip": ".zip"}

# Set by the worker on a warm shutdown (SIGTERM): running jobs are handed back at their
# next progress step so another worker takes them at once, not after the lease expires.
STOPPING = threading.Event()


class WorkerStopping(Exception):
    """This worker is shutting down; the job goes back to the queue without using an attempt."""


class Tracker:
    """The ``progress(stage, fraction)`` callback: heartbeat, fencing check, stage timings."""

    def __init__(
        self, tx: Tx, settings: Settings, job_id: uuid.UUID, attempt: int, timings: JSONObject
    ):
        self.tx, self.settings, self.job_id, self.attempt = tx, settings, job_id, attempt
        self.timings: JSONObject = dict(timings)
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

    def close(self) -> JSONObject:
        if self.stage is not None:
            self.timings[self.stage] = round(time.monotonic() - self.stage_t0, 3)
        return self.timings

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless this attempt still owns the job (and renew the lease)."""
        assert self.stage is not None
        self.last_write = 0.0
        self(self.stage, 1.0)


@dataclass
class Stage:
    """What a stage body gets: the claimed job's snapshot, its tracker and a temp folder."""

    tx: Tx
    store: ObjectStore
    settings: Settings
    job_id: uuid.UUID
    worker: str
    attempt: int
    options: JSONObject
    summary: JSONObject
    analysis_prefix: str | None
    external_sample_id: str | None
    upload_key: str | None
    upload_format: str | None
    prefix: str  # this attempt's artifacts: jobs/{id}/attempt-{n}
    tracker: Tracker
    tmp: Path


StageBody = Callable[[Stage], str]


def run_stage(
    tx: Tx,
    store: ObjectStore,
    settings: Settings,
    job_id: uuid.UUID,
    worker: str,
    phase: Phase,
    body: StageBody,
) -> str:
    """Claim the job for ``phase``, run ``body`` under the failure guard in a temp folder.

    Returns ``body``'s result, ``"skipped"`` (not queued for this phase: a duplicate) or
    ``"stopped"`` (failed, requeued, handed back or lease lost; the job row says which).
    A database outage during the claim propagates (the task retries with backoff).
    """
    from core.db.models import Upload

    with tx() as s:
        job = lifecycle.claim(s, job_id, phase, worker, settings)
        if job is None:
            return "skipped"
        upload = s.get(Upload, job.upload_id) if job.upload_id is not None else None
        snapshot: dict[str, Any] = {
            "attempt": job.attempts,
            "options": dict(job.options),
            "summary": dict(job.summary),
            "analysis_prefix": job.analysis_prefix,
            "external_sample_id": job.external_sample_id,
            "upload_key": upload.storage_key if upload is not None else None,
            "upload_format": upload.format if upload is not None else None,
        }
        timings = dict(job.timings)
    attempt = int(snapshot["attempt"])
    prefix = f"jobs/{job_id}/attempt-{attempt}"
    tracker = Tracker(tx, settings, job_id, attempt, timings)
    with (
        _guard(tx, store, settings, job_id, attempt, prefix),
        tempfile.TemporaryDirectory(prefix="mgs-job-") as tmp,
    ):
        return body(
            Stage(
                tx,
                store,
                settings,
                job_id,
                worker,
                prefix=prefix,
                tracker=tracker,
                tmp=Path(tmp),
                **snapshot,
            )
        )
    return "stopped"


@contextlib.contextmanager
def _guard(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, attempt: int, prefix: str
) -> Iterator[None]:
    """Turn failures into job states: input errors fail the job, outages requeue it without
    using an attempt, other errors retry it. The new state is written first (retried while
    the database is down); the attempt's objects are deleted after, and only if the job does
    not hold them; a failing delete never stops the release."""
    try:
        yield
    except WorkerStopping:
        log.info("job %s attempt %s handed back: the worker is stopping", job_id, attempt)
        _settle(
            tx, settings, job_id, prefix, store, lambda s: lifecycle.hand_back(s, job_id, attempt)
        )
    except LeaseLost:
        log.info(
            "job %s attempt %s lost its lease (canceled or expired); stopping", job_id, attempt
        )
        _settle(tx, settings, job_id, prefix, store, None)
    except MGSError as e:
        code, detail = e.code, e.detail
        _settle(
            tx,
            settings,
            job_id,
            prefix,
            store,
            lambda s: lifecycle.fail(s, job_id, attempt, code, detail),
        )
    except Exception as e:
        # the message may name servers, paths or SQL: logged here, the job keeps the type only
        detail = f"{type(e).__name__}: {e}"
        kind = type(e).__name__
        if is_transient(e):
            log.warning("job %s attempt %s: dependency unavailable: %s", job_id, attempt, detail)
            _settle(
                tx,
                settings,
                job_id,
                prefix,
                store,
                lambda s: lifecycle.requeue_transient(
                    s, job_id, attempt, f"a dependency was unavailable ({kind})", settings
                ),
            )
        else:
            log.exception("job %s attempt %s failed unexpectedly", job_id, attempt)
            _settle(
                tx,
                settings,
                job_id,
                prefix,
                store,
                lambda s: lifecycle.release(
                    s,
                    job_id,
                    attempt,
                    f"an internal error ({kind}) stopped this attempt",
                    settings,
                ),
            )


def _settle(
    tx: Tx,
    settings: Settings,
    job_id: uuid.UUID,
    prefix: str,
    store: ObjectStore,
    transition: Callable[[Session], Any] | None,
) -> None:
    """Write ``transition`` (retried with bounded backoff while the database is unreachable,
    up to ``MGS_RELEASE_RETRY_S``), then delete the attempt's objects unless the job holds them."""
    from core.db.models import Job

    deadline = time.monotonic() + settings.release_retry_s
    delay = 0.25
    keep = True
    while True:
        try:
            with tx() as s:
                if transition is not None:
                    transition(s)
                keep = lifecycle.holds_prefix(s.get(Job, job_id, populate_existing=True), prefix)
            break
        except Exception as e:
            if not is_transient(e) or time.monotonic() >= deadline:
                log.exception("job %s: could not record the outcome; the reconciler will", job_id)
                return  # keep the objects: the job row may still point at them
            log.warning("job %s: database unavailable (%s); retrying in %.1f s", job_id, e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    if keep:
        return
    try:
        store.delete_prefix(prefix)
    except Exception as e:  # the stale-attempt objects stay; nothing points at them
        log.warning("job %s: could not delete %s: %r", job_id, prefix, e)


def run_analysis_job(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, worker: str
) -> str:
    """Validate (sandboxed), analyse, upload artifacts to ``jobs/{id}/attempt-{n}/``, queue the report."""
    return run_stage(tx, store, settings, job_id, worker, Phase.ANALYSIS, _analysis)


def _analysis(st: Stage) -> str:
    settings, tracker, options = st.settings, st.tracker, st.options
    assert st.upload_key and st.upload_format
    tracker(JobStage.VALIDATING.value, 0.0)
    sample = st.tmp / f"sample{UPLOAD_SUFFIX[st.upload_format]}"
    st.store.get_file(st.upload_key, sample)
    # an archive is unpacked once, by the sandboxed validation, into unpacked/; the analysis
    # reads the same folder (only the members the readers need were extracted)
    unpacked = st.tmp / "unpacked"
    validation = validate_in_subprocess(sample, settings, unpack_dir=unpacked)
    tracker(JobStage.VALIDATING.value, 1.0)

    from core.markers import marker_table_path
    from core.options import JobOptions
    from core.runner import run_analysis_stage

    out = st.tmp / "out"
    out.mkdir()
    job_opts = JobOptions.parse(options)
    a_opts = job_opts.analysis(
        markers=marker_table_path(job_opts.markers, settings.marker_tables_dir),
        write_h5ad=True,
    )
    summary: Mapping[str, object]
    if settings.analysis_memory_mb:
        summary = analyse_in_subprocess(sample, out, a_opts, settings, tracker, unpack_dir=unpacked)
    else:
        summary = run_analysis_stage(
            sample, out, a_opts, settings, progress=tracker, unpack_dir=unpacked
        )
    tracker.check()
    upload_dir(st.store, out, st.prefix)
    with st.tx() as s:
        lifecycle.finish_analysis(
            s,
            st.job_id,
            st.attempt,
            st.prefix,
            {"validation": validation, "analysis": to_jsonable(summary)},
            tracker.close(),
        )
    return "analyzed"


def run_report_job(
    tx: Tx, store: ObjectStore, settings: Settings, job_id: uuid.UUID, worker: str
) -> str:
    """Download the analysis artifacts, write the report, upload it, mark the job succeeded."""
    return run_stage(tx, store, settings, job_id, worker, Phase.REPORT, _report)


def _report(st: Stage) -> str:
    settings, tracker, options = st.settings, st.tracker, st.options
    assert st.analysis_prefix
    tracker(JobStage.REPORTING.value, 0.0)
    out = st.tmp / "out"
    download_prefix(st.store, st.analysis_prefix, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    from core.jobs.service import check_report_choice
    from core.options import JobOptions
    from core.report import write_report

    check_report_choice(options, settings)  # the allowlist may have narrowed since submit
    r_opts = JobOptions.parse(options).report(
        settings.report_backend,
        max_new_tokens=settings.max_new_tokens,
        specimen_id=st.external_sample_id,
    )
    try:
        provenance = write_report(
            out, r_opts, settings, progress=lambda f: tracker(JobStage.REPORTING.value, f)
        )
    except PromptLeakage:
        # As the CLI (exit 4): the leakage gate refused the prompt, nothing went to any model,
        # and the report was written with the computed findings and no narrative. The job
        # succeeds with that report; report.json and the job's ``report`` say why.
        provenance = _withheld_report(out)
    tracker.check()
    report_dir = st.tmp / "report"
    for p in out.rglob("*"):
        if p.is_file() and before.get(p) != p.stat().st_mtime_ns:
            dest = report_dir / p.relative_to(out)
            dest.parent.mkdir(parents=True, exist_ok=True)
            p.replace(dest)
    upload_dir(st.store, report_dir, st.prefix)
    with st.tx() as s:
        lifecycle.succeed(
            s,
            st.job_id,
            st.attempt,
            timings=tracker.close(),
            report_prefix=st.prefix,
            summary={**st.summary, "report": to_jsonable(provenance)},
        )
    return "succeeded"


def _withheld_report(out: Path) -> ReportProvenance:
    """The provenance of a report written without a narrative; re-raises the refusal when no
    such report was written (an unreadable leakage context refuses before writing anything)."""
    path = out / "report.json"
    report = parse_report(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if report.get("status") != "narrative_withheld":
        raise PromptLeakage("the leakage gate refused the prompt and no report was written")
    provenance = ReportProvenance(**(report.get("provenance") or {}))
    provenance["narrative"] = report.get("narrative")
    return provenance
