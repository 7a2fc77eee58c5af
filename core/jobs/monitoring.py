"""What the service says about itself: readiness of its dependencies (``/readyz``) and job
figures for ``/metrics``.

The queries live in :mod:`core.db.repositories`; these functions run them and return one typed
shape each, so the API's routers hold no SQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import repositories as repo
from core.db.models import JobState

Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class StageDuration:
    """Seconds spent in one stage, summed over finished jobs, and how many jobs recorded it."""

    stage: str
    total_s: float
    count: int


@dataclass(frozen=True)
class JobStats:
    """Jobs by state (every state, 0 when none) and stage durations of finished jobs."""

    by_state: dict[str, int]
    stage_durations: tuple[StageDuration, ...]


@dataclass(frozen=True)
class Readiness:
    """Each dependency's check: ``ok``, ``error: <type>`` or ``slow: no answer within N s``."""

    checks: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(v == "ok" for v in self.checks.values())

    def failing(self) -> str:
        """The dependencies not ``ok``, as one line (``storage: slow: ...; database: error: ...``)."""
        return "; ".join(f"{k}: {v}" for k, v in self.checks.items() if v != "ok")


async def job_stats(session: AsyncSession) -> JobStats:
    """Jobs by state and stage durations, read in one session.

    Parameters
    ----------
    session
        A (read) session; nothing is written.

    Returns
    -------
    JobStats
        ``by_state`` has a key for every :class:`~core.db.models.JobState`.
    """
    counts = {
        str(state): int(n) for state, n in (await session.execute(repo.jobs_by_state())).all()
    }
    by_state = {s.value: counts.get(s.value, 0) for s in JobState}
    rows = (await session.execute(repo.stage_durations())).all()
    stages = tuple(StageDuration(str(stage), float(total), int(n)) for stage, total, n in rows)
    return JobStats(by_state=by_state, stage_durations=stages)


async def ping_database(session: AsyncSession) -> None:
    """Raise unless the database answers a trivial query."""
    await session.execute(repo.PING)


async def readiness(checks: Mapping[str, Check], budget_s: float) -> Readiness:
    """Run every check in parallel, each within ``budget_s`` seconds.

    Parameters
    ----------
    checks
        Name of a dependency -> an async callable that raises when it is not usable.
    budget_s
        Seconds each check may take; a slower one is reported ``slow``, and its answer is
        not waited for (``MGS_READINESS_TIMEOUT_S``).

    Returns
    -------
    Readiness
        One entry per check, in the order given.
    """
    results: dict[str, str] = {}

    async def run(name: str, check: Check) -> None:
        try:
            with anyio.fail_after(budget_s):
                await check()
            results[name] = "ok"
        except TimeoutError:
            results[name] = f"slow: no answer within {budget_s:g} s"
        except Exception as e:
            results[name] = f"error: {type(e).__name__}"

    async with anyio.create_task_group() as tg:
        for name, check in checks.items():
            tg.start_soon(run, name, check)
    return Readiness(checks={k: results[k] for k in checks})
