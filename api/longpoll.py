"""Job change notifications for the long poll: one Postgres LISTEN connection per API process.

A trigger on ``jobs`` (migration 0003) sends ``NOTIFY mgs_job_changed, '<job id>'``
whenever a job's state or stage changes, whoever changed it (worker, relay, API).
Requests waiting on a job (``GET /v1/jobs/{id}?wait=N``) each hold an
:class:`asyncio.Event`; the listener sets the events of the job named in each
notification. No request holds a database connection while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from core.jobs.errors import Unavailable
from core.jobs.preflight import libpq_url

log = logging.getLogger(__name__)
CHANNEL = "mgs_job_changed"


class JobChangeListener:
    """Fans Postgres notifications out to the requests waiting on each job."""

    def __init__(self, database_url: str) -> None:
        self.url = libpq_url(database_url)
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    async def _run(self, ready: asyncio.Event) -> None:
        import psycopg

        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                ready.set()
                async for note in conn.notifies():
                    for event in self.waiters.get(note.payload, ()):
                        event.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # connection lost: wake everyone, they re-read and re-subscribe
            log.warning("job change listener stopped: %r", e)
        finally:
            for events in self.waiters.values():
                for event in events:
                    event.set()

    async def start(self) -> None:
        """Connect and LISTEN (once; again after a lost connection)."""
        async with self._lock:
            if self._task is not None and not self._task.done() and self._ready is not None:
                await self._ready.wait()
                return
            ready = asyncio.Event()
            self._ready = ready
            self._task = asyncio.create_task(self._run(ready), name="job-change-listener")
            waiter = asyncio.create_task(ready.wait())
            await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not ready.is_set():
                raise Unavailable("the database does not answer: cannot wait for job changes")

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when ``job_id``'s state or stage changes (subscribe before reading)."""
        await self.start()
        event = asyncio.Event()
        self.waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            events = self.waiters.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self.waiters[job_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
