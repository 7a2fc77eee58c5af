"""One error shape: ``application/problem+json`` (RFC 9457) with a stable ``code``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import Problem
from core.errors import MGSError
from core.jobs.outages import dependency_down

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://medgemma-spatial.dev/problems/"
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "upload_timeout",
    409: "conflict",
    413: "upload_too_large",
    414: "uri_too_long",
    415: "unsupported_format",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses an operation can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        out[s] = {
            "model": Problem,
            "description": HTTPStatus(s).phrase,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        if s in (429, 503):
            out[s]["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
    return out


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: each method is tried against the routes
    (included routers carry no ``methods`` of their own, so they cannot simply be read)."""
    from starlette.routing import Match, Mount
    from starlette.staticfiles import StaticFiles

    scope = request.scope
    allowed: list[str] = []
    for method in _METHODS:
        # inside a mount the scope's root_path has grown; match from the app's own root
        probe = {
            **scope,
            "method": method,
            "root_path": scope.get("app_root_path", scope.get("root_path", "")),
        }
        for route in request.app.router.routes:
            static = isinstance(route, Mount) and isinstance(route.app, StaticFiles)
            if static and method not in ("GET", "HEAD"):
                continue  # a mount matches every method; static files serve only these
            if route.matches(probe)[0] == Match.FULL:
                allowed.append(method)
                break
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(1, "HEAD")
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    @app.exception_handler(MGSError)
    async def mgs_error(request: Request, exc: MGSError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return problem(exc.http_status, exc.code, exc.detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return problem(422, "validation_error", "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            return problem(
                405,
                "method_not_allowed",
                str(exc.detail),
                headers={"Allow": _allowed_methods(request)},
            )
        return problem(
            exc.status_code,
            HTTP_CODES.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,  # e.g. Allow on 405
        )

    async def outage_or_unexpected(request: Request, exc: Exception) -> JSONResponse:
        down = dependency_down(exc)
        if down is not None:
            log.warning("%s unavailable on %s %s: %r", down, request.method, request.url.path, exc)
            return dependency_unavailable(down)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "internal server error")

    # database and storage outages answer 503 (handled here, not re-raised to the server)
    for cls in _outage_classes():
        app.add_exception_handler(cls, outage_or_unexpected)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return await outage_or_unexpected(request, exc)


RETRY_AFTER_S = {"database": 5, "storage": 5}
OUTAGE_CODES = {"database": "database_unavailable", "storage": "storage_unavailable"}


def dependency_unavailable(which: str) -> JSONResponse:
    """503 problem+json naming the dependency that is down, with ``Retry-After``."""
    return problem(
        503,
        OUTAGE_CODES[which],
        f"the {which} is unavailable; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_S[which])},
    )


def _outage_classes() -> list[type[BaseException]]:
    classes: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        classes += [DBAPIError, PoolTimeout]
    except ImportError:  # pragma: no cover
        pass
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        classes += [BotoCoreError, ClientError, Boto3Error]
    except ImportError:  # pragma: no cover
        pass
    return classes
