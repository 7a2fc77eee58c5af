"""The FastAPI app: ``create_app()``; engines, store and Redis are made in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from api import errors
from api.limits import BodyLimits, SecurityHeaders
from api.metrics import HttpMetrics
from api.routers import console, health, jobs, me, uploads
from api.schemas import Problem
from core.config import Settings, get_settings

API_VERSION = "1.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio
        import redis.asyncio as aioredis

        from core.db.session import make_async_engine, make_async_sessionmaker
        from core.jobs.cleanup import sweep_upload_temp
        from core.jobs.outbox import import_plugins
        from core.storage import open_store

        import_plugins(settings)
        # what a killed API left in the temp folder goes now, the rest periodically
        await anyio.to_thread.run_sync(
            lambda: sweep_upload_temp(settings.stale_upload_s, at_start=True)
        )
        timeout = settings.db_connect_timeout_s
        engine = make_async_engine(settings.database_url, connect_timeout_s=timeout)
        # reads (auth, polling, listing) need no transaction: autocommit saves BEGIN/ROLLBACK
        read_engine = make_async_engine(
            settings.database_url, autocommit=True, connect_timeout_s=timeout
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_async_sessionmaker(engine)
        app.state.read_sessionmaker = make_async_sessionmaker(read_engine)
        app.state.store = open_store(settings)
        app.state.redis = aioredis.from_url(settings.broker_url)
        from api.longpoll import JobChangeListener

        app.state.job_listener = JobChangeListener(
            settings.database_url, settings.status_cache_entries
        )  # connects on first use

        async def sweep_periodically() -> None:
            while True:
                await anyio.sleep(settings.sweep_interval_s)
                await anyio.to_thread.run_sync(sweep_upload_temp, settings.stale_upload_s)

        import asyncio

        sweeper = asyncio.create_task(sweep_periodically())
        # Everything made so far (modules, the app, routes, pydantic validators) lives as long as
        # the process: move it out of the collector's view. A full (gen 2) collection then walks
        # only what requests allocate: 2-3 ms instead of 60-80 ms, which had stalled every
        # request in flight and set the p99 of a plain status GET (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            sweeper.cancel()
            await app.state.job_listener.close()
            await app.state.redis.aclose()
            await engine.dispose()
            await read_engine.dispose()

    app = FastAPI(
        title="MedGemma Spatial API",
        version=API_VERSION,
        description=(
            "Upload spatial transcriptomics samples, run the analysis and the MedGemma report as jobs, "
            "poll or receive signed webhooks, download results. Errors are application/problem+json."
        ),
        lifespan=lifespan,
    )
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    # outermost last: metrics see every answer, security headers go on the limits' 408/413 too
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HttpMetrics, registry=registry)
    errors.install(app)  # database and storage outages: 503 with Retry-After (api/errors.py)
    app.include_router(uploads.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(me.router)
    console.install(app)  # the lab console at / (not in the OpenAPI spec)

    original = app.openapi

    def openapi() -> dict:  # type: ignore[type-arg]
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        # every 422 is a problem document, not FastAPI's HTTPValidationError
        for path in spec.get("paths", {}).values():
            for op in path.values():
                resp = op.get("responses", {})
                if "422" in resp:
                    resp["422"] = {
                        "description": "Validation error",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    }
        # any /v1 operation may meet a database or storage outage: 503 with Retry-After
        outage = errors.problem_responses(503)[503]
        for route, path in spec.get("paths", {}).items():
            if not route.startswith("/v1/"):
                continue
            for op in path.values():
                op.setdefault("responses", {}).setdefault(
                    "503",
                    {
                        "description": "Database or object storage unavailable "
                        "(database_unavailable | storage_unavailable)",
                        "content": outage["content"],
                        "headers": outage["headers"],
                    },
                )
        for name in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(name, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app
