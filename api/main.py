"""The FastAPI app: ``create_app()``; engines, store and Redis are made in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from api import errors
from api.limits import BodyLimits, SecurityHeaders
from api.metrics import HttpMetrics
from api.routers import console, health, jobs, uploads
from api.schemas import Problem
from core.config import Settings, get_settings

API_VERSION = "1.0.0"


def _install_dependency_errors(app: FastAPI) -> None:
    """The database gone mid-run (dropped, down, unreachable): 503 ``database_unavailable``
    with what to check, not 500 ``internal_error``."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DBAPIError

    from core.jobs.preflight import redact

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        import psycopg

        if not (exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)):
            return await errors_unexpected(request, exc)
        url = redact(app.state.settings.database_url)
        return errors.problem(
            503,
            "database_unavailable",
            f"the database {url} does not answer or does not exist; the administrator checks "
            "MGS_DATABASE_URL and Postgres (medgemma-spatial db upgrade)",
            headers={"Retry-After": "30"},
        )

    async def errors_unexpected(request: Request, exc: Exception) -> JSONResponse:
        handler = app.exception_handlers[Exception]
        return await handler(request, exc)  # type: ignore[no-any-return,misc]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing connects until the lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import redis.asyncio as aioredis

        from core.db.session import make_async_engine, make_async_sessionmaker
        from core.storage import open_store

        engine = make_async_engine(settings.database_url)
        # reads (auth, polling, listing) need no transaction: autocommit saves BEGIN/ROLLBACK
        read_engine = make_async_engine(settings.database_url, autocommit=True)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_async_sessionmaker(engine)
        app.state.read_sessionmaker = make_async_sessionmaker(read_engine)
        app.state.store = open_store(settings)
        app.state.redis = aioredis.from_url(settings.broker_url)
        from api.longpoll import JobChangeListener

        app.state.job_listener = JobChangeListener(settings.database_url)  # connects on first use
        try:
            yield
        finally:
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
    errors.install(app)
    _install_dependency_errors(app)
    app.include_router(uploads.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
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
        for name in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(name, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app
