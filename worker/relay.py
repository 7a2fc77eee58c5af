"""The outbox relay and reconciler loop (``medgemma-spatial relay``)."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import httpx

from core.config import Settings
from core.jobs import outbox

log = logging.getLogger(__name__)


def run_relay(settings: Settings, once: bool = False, reconcile_every_s: float = 5.0) -> None:
    """Publish committed task messages, deliver webhooks, reconcile leases; until SIGTERM."""
    from core.db.session import make_sync_engine, make_sync_sessionmaker
    from worker.celery_app import make_celery

    sessions = make_sync_sessionmaker(make_sync_engine(settings.database_url))
    celery = make_celery(settings.broker_url)
    http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    stop = [False]

    def _stop(*_: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def publish(task: str, queue: str, job_id: str, msg_id: str) -> None:
        celery.send_task(task, args=[job_id], queue=queue, task_id=f"{job_id}.{msg_id}")

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return http.post(url, content=body, headers=headers).status_code

    last_reconcile = 0.0
    if True:
        while not stop[0]:
            busy = 0
            try:
                with sessions() as s, s.begin():
                    busy += outbox.publish_pending(s, publish)
                with sessions() as s, s.begin():
                    busy += outbox.deliver_webhooks(s, post, settings)
                if time.monotonic() - last_reconcile >= reconcile_every_s:
                    with sessions() as s, s.begin():
                        counts = outbox.reconcile(s, settings)
                    if any(counts.values()):
                        log.info("reconciled: %s", counts)
                    last_reconcile = time.monotonic()
            except Exception:
                log.exception("relay loop failed; retrying")
                time.sleep(1.0)
            if once:
                break
            if not busy:
                time.sleep(settings.relay_interval_s)
    http.close()
