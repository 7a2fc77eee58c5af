"""The lab console: a static page at ``/`` for people (not for LIMS), files under ``/console/``.

Plain HTML, CSS and JavaScript shipped as package data in ``api/console/``; the page
calls the same ``/v1`` API with the key as a Bearer token. Not part of the OpenAPI spec.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"

# OpenSeadragon (vendored) adds one <style> element of its own: allowed by its hash, nothing
# else inline (tests/unit/test_console_static.py checks the hash against the vendored file)
OSD_STYLE_SHA256 = "sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE="

# the page loads only its own script and style; figures are shown from blob: URLs
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; "
        f"style-src 'self' '{OSD_STYLE_SHA256}'; img-src 'self' blob: data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    """The console's single page."""
    return FileResponse(
        CONSOLE_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS
    )


class _ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the console at ``/`` and its files at ``/console/``."""
    app.include_router(router)
    app.mount("/console", _ConsoleFiles(directory=CONSOLE_DIR), name="console")
