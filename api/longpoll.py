"""Job change notifications for the long poll: one Postgres LISTEN connection per API process.

A trigger on ``jobs`` (migration 0003) sends ``NOTIFY mgs_job_changed, '<job id>'``
whenever a job's state or stage changes, whoever changed it (worker, relay, API).
Requests waiting on a job (``GET /v1/jobs/{id}?wait=N``) each hold an
:class:`asyncio.Event`; the listener sets the events of the job named in each
notification. No request holds a database connection while it waits.

The same connection keeps the status cache coherent: another trigger (migration 0004)
sends ``NOTIFY mgs_job_touched, '<job id>'`` on every update or delete of a job row, and
the listener drops that job's cached ``GET /v1/jobs/{id}`` body. The cache answers only
while the listener is connected; a body read from the database is stored only if no
notification arrived while it was read (a generation counter), so a reader never gets a
row older than the last notification this process has received; and none is used after
``CACHE_MAX_AGE_S`` (a bound should the connection be cut unnoticed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from core.jobs.errors import Unavailable
from core.jobs.preflight import libpq_url

log = logging.getLogger(__name__)
CHANNEL = "mgs_job_changed"
TOUCHED = "mgs_job_touched"


# an entry is read again from the database after this long even if no notification came: a
# bound on staleness should the LISTEN connection be cut without this process noticing
CACHE_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class CachedStatus:
    tenant_id: str
    body: bytes
    etag: str
    stored_at: float = field(default_factory=time.monotonic)


class JobChangeListener:
    """Fans Postgres notifications out to the requests waiting on each job."""

    def __init__(self, database_url: str, cache_entries: int = 0) -> None:
        self.url = libpq_url(database_url)
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self.cache_entries = cache_entries
        self.cache: OrderedDict[str, CachedStatus] = OrderedDict()
        self.generation = 0  # bumped on every notification that drops cached rows
        self._starting: asyncio.Task[None] | None = None

    async def _run(self, ready: asyncio.Event) -> None:
        import psycopg

        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                await conn.execute(f"LISTEN {TOUCHED}")
                ready.set()
                async for note in conn.notifies():
                    if note.channel == TOUCHED:
                        self.generation += 1
                        self.cache.pop(note.payload, None)
                        continue
                    for event in self.waiters.get(note.payload, ()):
                        event.set()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # connection lost: wake everyone, they re-read and re-subscribe
            log.warning("job change listener stopped: %r", e)
        finally:
            self.generation += 1
            self.cache.clear()  # notifications may be missed from now on
            for events in self.waiters.values():
                for event in events:
                    event.set()

    def start_soon(self) -> None:
        """Connect in the background (the status cache waits for it; requests do not)."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start_quietly())

    async def _start_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.start()
        await asyncio.sleep(5)  # at most one connection attempt per 5 s from plain GETs

    @property
    def connected(self) -> bool:
        return (
            self._task is not None
            and not self._task.done()
            and self._ready is not None
            and self._ready.is_set()
        )

    def cached(self, job_id: str, tenant_id: str) -> CachedStatus | None:
        """The cached status body of ``job_id`` for ``tenant_id`` (None: read the database)."""
        if not self.cache_entries or not self.connected:
            return None
        hit = self.cache.get(job_id)
        if hit is None or hit.tenant_id != tenant_id:
            return None
        if time.monotonic() - hit.stored_at > CACHE_MAX_AGE_S:
            self.cache.pop(job_id, None)
            return None
        self.cache.move_to_end(job_id)
        return hit

    def store(self, job_id: str, entry: CachedStatus, generation: int) -> None:
        """Keep ``entry`` unless a notification arrived since ``generation`` was read."""
        if not self.cache_entries or not self.connected or generation != self.generation:
            return
        self.cache[job_id] = entry
        self.cache.move_to_end(job_id)
        while len(self.cache) > self.cache_entries:
            self.cache.popitem(last=False)

    def forget(self, job_id: str) -> None:
        """Drop a job's cached status (this process changed it; the notification follows)."""
        self.generation += 1
        self.cache.pop(job_id, None)

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
        if self._starting is not None:
            self._starting.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
