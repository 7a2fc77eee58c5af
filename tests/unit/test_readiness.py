"""``core.jobs.monitoring.readiness``: checks run in parallel, each within the budget."""

from __future__ import annotations

import time

import pytest

anyio = pytest.importorskip("anyio", reason="the service extra is not installed")
pytest.importorskip("sqlalchemy", reason="the service extra is not installed")

from core.jobs.monitoring import readiness  # noqa: E402


def test_each_check_is_named_ok_error_or_slow_within_one_budget() -> None:
    async def ok() -> None:
        return None

    async def refused() -> None:
        raise ConnectionRefusedError

    async def hangs() -> None:
        await anyio.sleep(30)

    t0 = time.perf_counter()
    ready = anyio.run(readiness, {"storage": hangs, "database": ok, "broker": refused}, 0.3)
    elapsed = time.perf_counter() - t0
    assert ready.checks == {
        "storage": "slow: no answer within 0.3 s",
        "database": "ok",
        "broker": "error: ConnectionRefusedError",
    }
    assert not ready.ok and "database" not in ready.failing()
    assert elapsed < 2  # in parallel: one budget, not the sum
    assert anyio.run(readiness, {"database": ok}, 0.3).ok
