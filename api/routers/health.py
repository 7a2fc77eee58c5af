"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.errors import problem, problem_responses
from api.metrics import render
from api.schemas import Health, ReadinessProblem
from core.jobs.errors import Unauthorized
from core.jobs.monitoring import ping_database, readiness

router = APIRouter(tags=["health"])
READY_RETRY_AFTER_S = 5


@router.get("/healthz", operation_id="healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Health,
    responses={
        503: {
            "model": ReadinessProblem,
            "description": "Not ready: problem+json (code ``not_ready``) naming each check",
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/ReadinessProblem"}
                }
            },
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
        }
    },
)
async def readyz(request: Request) -> Response:
    """Postgres, Redis and the object store, checked in parallel within
    ``MGS_READINESS_TIMEOUT_S`` (1.5 s); each check says ``ok``, ``error: ...`` or ``slow: ...``.
    Not ready: 503 problem+json, code ``not_ready``, the checks in ``checks``."""
    state = request.app.state

    async def database() -> None:
        async with state.read_sessionmaker() as s:
            await ping_database(s)

    async def broker() -> None:
        await state.redis.ping()

    async def storage() -> None:
        # a hung store must not hold the answer: the thread is left to finish on its own
        await anyio.to_thread.run_sync(state.store.ping, abandon_on_cancel=True)

    ready = await readiness(
        {"database": database, "broker": broker, "storage": storage},
        state.settings.readiness_timeout_s,
    )
    if ready.ok:
        return JSONResponse(Health(status="ok", checks=ready.checks).model_dump())
    return problem(
        503,
        "not_ready",
        f"not ready: {ready.failing()}",
        headers={"Retry-After": str(READY_RETRY_AFTER_S)},
        checks=ready.checks,
    )


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
