"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import problem_responses
from api.metrics import render
from api.schemas import Health
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
    """Postgres, Redis and the object store are reachable."""
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        async with state.sessionmaker() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
    try:
        await state.redis.ping()
        checks["broker"] = "ok"
    except Exception as e:
        checks["broker"] = f"error: {type(e).__name__}"
    try:
        await anyio.to_thread.run_sync(state.store.ping)
        checks["storage"] = "ok"
    except Exception as e:
        checks["storage"] = f"error: {type(e).__name__}"
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
