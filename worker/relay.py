"""The outbox relay and reconciler (``medgemma-spatial relay``).

Two loops in one process: one publishes committed task messages to Celery and
reconciles leases; the other delivers webhooks, so a slow callback endpoint
never delays job dispatch. Several relays may run: rows are taken with
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import httpx

from core.config import Settings
from core.jobs import outbox
from core.jobs.cleanup import sweep_store, sweep_upload_sessions
from core.jobs.outages import is_transient
from core.storage import open_store

log = logging.getLogger(__name__)


def run_relay(
    settings: Settings, once: bool = False, reconcile_every_s: float | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or one pass of each loop with ``once``)."""
    from core.db.session import make_sync_engine, make_sync_sessionmaker
    from worker.celery_app import make_celery

    outbox.import_plugins(settings)
    sessions = make_sync_sessionmaker(
        make_sync_engine(
            settings.database_url, pool_size=3, connect_timeout_s=settings.db_connect_timeout_s
        )
    )
    celery = make_celery(settings.broker_url, settings.broker_visibility_timeout_s)
    store = open_store(settings)
    if reconcile_every_s is None:
        reconcile_every_s = settings.reconcile_interval_s
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def publish(task: str, queue: str, job_id: str, msg_id: str) -> None:
        celery.send_task(task, args=[job_id], queue=queue, task_id=f"{job_id}.{msg_id}")

    def dispatch_loop() -> None:
        last_reconcile = 0.0
        last_sweep = time.monotonic()  # the first sweep after one interval
        # heartbeats are judged only once the database has answered us for a full
        # MGS_WORKER_DEAD_AFTER_S: during an outage no worker could write one
        db_up_since: float | None = None
        while not stop.is_set():
            busy = 0
            try:
                with sessions() as s, s.begin():
                    busy = outbox.publish_pending(s, publish)
                if db_up_since is None:
                    db_up_since = time.monotonic()
                if time.monotonic() - last_reconcile >= reconcile_every_s:
                    trust = time.monotonic() - db_up_since >= settings.worker_dead_after_s
                    with sessions() as s, s.begin():
                        counts = outbox.reconcile(s, settings, check_heartbeats=trust)
                    if any(counts.values()):
                        log.info("reconciled: %s", counts)
                    last_reconcile = time.monotonic()
            except Exception as e:
                if db_up_since is not None or not is_transient(e):
                    log.warning("dispatch loop failed (%r); retrying", e)
                db_up_since = None
                stop.wait(1.0)
            if time.monotonic() - last_sweep >= settings.sweep_interval_s:
                last_sweep = time.monotonic()
                sweep_store(store, settings)
                sweep_upload_sessions(sessions, store, settings)
            if once:
                return
            if not busy:
                stop.wait(settings.relay_interval_s)

    def webhook_loop() -> None:
        with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False) as http:

            def post(url: str, body: bytes, headers: dict[str, str]) -> int:
                return http.post(url, content=body, headers=headers).status_code

            while not stop.is_set():
                busy = 0
                try:
                    with sessions() as s, s.begin():
                        busy = outbox.deliver_webhooks(s, post, settings, limit=5)
                except Exception:
                    log.exception("webhook loop failed; retrying")
                    stop.wait(1.0)
                if once:
                    return
                if not busy:
                    stop.wait(settings.relay_interval_s)

    hooks = threading.Thread(target=webhook_loop, name="webhooks", daemon=True)
    hooks.start()
    dispatch_loop()
    stop.set()
    hooks.join(settings.webhook_timeout_s + 5)
