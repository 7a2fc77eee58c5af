"""The Celery app. Configuration only at import; connections are made per worker process."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_shutting_down

from core.config import get_settings


def transport_options(visibility_timeout_s: int) -> dict[str, int]:
    """Redis transport options: the visibility timeout and how often unacked tasks are swept back.

    kombu's event loop calls its restore sweep every ``unacked_restore_interval`` s (default 10)
    but scans Redis only on every ``unacked_restore_throttle``-th call (default 10), so a task
    whose worker died came back up to ~100 s after its visibility timeout, at a phase that
    depended on when the worker started. Scanning on every call, at most every 10 s (every
    half visibility timeout when that is shorter), bounds the delay; each scan is one ZRANGE.
    """
    return {
        "visibility_timeout": visibility_timeout_s,
        "unacked_restore_interval": max(1, min(10, visibility_timeout_s // 2)),
        "unacked_restore_throttle": 1,
    }


def make_celery(broker_url: str, visibility_timeout_s: int | None = None) -> Celery:
    settings = get_settings()
    plugins = [m.strip() for m in settings.worker_imports.split(",") if m.strip()]
    app = Celery("medgemma_spatial", broker=broker_url, include=["worker.tasks", *plugins])
    app.conf.update(
        task_acks_late=True,  # a task lost with its worker is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # Postgres holds job state, not a result backend
        task_default_queue="analysis",
        task_routes={
            "mgs.analysis": {"queue": "analysis"},
            "mgs.report": {"queue": "report"},
        },
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(
            visibility_timeout_s or settings.broker_visibility_timeout_s
        ),
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


app = make_celery(get_settings().broker_url)


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    from worker import resources

    resources.init()


@worker_init.connect
def _init_solo(sender: Any = None, **_: Any) -> None:
    # the solo and threads pools run tasks in the main process (no worker_process_init)
    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "")
    if "prefork" not in pool:
        from worker import resources

        resources.init()


@worker_shutting_down.connect
def _stopping(**_: Any) -> None:
    # solo/threads pools: the running job sees this at its next progress step and is
    # handed back (prefork children do not see it; they finish or hit the lease)
    from core.jobs.execute import STOPPING

    STOPPING.set()
