"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.errors import problem_responses
from api.metrics import render
from api.schemas import Health
from core.db import repositories as repo
from core.jobs.errors import Unauthorized

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(request: Request) -> Response:
    """Postgres, Redis and the object store, checked in parallel within
    ``MGS_READINESS_TIMEOUT_S`` (1.5 s); each check says ``ok``, ``error: ...`` or ``slow: ...``."""
    state = request.app.state
    budget = state.settings.readiness_timeout_s

    async def database() -> None:
        async with state.read_sessionmaker() as s:
            await s.execute(repo.PING)

    async def broker() -> None:
        await state.redis.ping()

    async def storage() -> None:
        # a hung store must not hold the answer: the thread is left to finish on its own
        await anyio.to_thread.run_sync(state.store.ping, abandon_on_cancel=True)

    checks: dict[str, str] = {}

    async def run(name: str, check: Callable[[], Awaitable[None]]) -> None:
        try:
            with anyio.fail_after(budget):
                await check()
            checks[name] = "ok"
        except TimeoutError:
            checks[name] = f"slow: no answer within {budget:g} s"
        except Exception as e:
            checks[name] = f"error: {type(e).__name__}"

    async with anyio.create_task_group() as tg:
        for name, check in (("database", database), ("broker", broker), ("storage", storage)):
            tg.start_soon(run, name, check)
    checks = {k: checks[k] for k in ("database", "broker", "storage")}
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    operation_id="metrics",
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 500),
    },
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: jobs by state, stage durations, queue depth, HTTP latency.

    With ``MGS_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``."""
    token = request.app.state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("metrics need 'Authorization: Bearer <MGS_METRICS_TOKEN>'")
    return Response(await render(request.app.state), media_type="text/plain; version=0.0.4")
