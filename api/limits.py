"""Slow and large clients: request-body limits (ASGI middleware) and a header timeout (HTTP
protocol), plus the security headers of every response.

- :class:`BodyLimits`: a body must arrive at ``MGS_BODY_MIN_RATE_BYTES_S`` on average once
  ``MGS_BODY_RATE_GRACE_S`` have passed, and completely within ``MGS_BODY_TIMEOUT_S``
  (408 ``body_too_slow`` / ``body_timeout``); outside uploads a body is at most
  ``MGS_MAX_JSON_BYTES`` (413 ``body_too_large``). Uploads are streamed as before; other
  bodies are small and read here before the route sees them.
- :class:`HeaderTimeoutProtocol`: uvicorn's httptools protocol with a timer from the
  connection's opening (or a kept-alive request's first byte) to the end of its headers
  (``MGS_HEADER_TIMEOUT_S``); a connection still sending headers then is answered 408 and
  closed. After a response the connection is closed if the request body was not all read.
- :class:`SecurityHeaders`: ``X-Content-Type-Options: nosniff`` on everything; a strict
  Content-Security-Policy on API responses (reports may show ``data:`` images and inline
  styles, nothing else) and one for ``/docs`` and ``/redoc`` that allows their CDN assets
  and, by hash, exactly their inline scripts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from http import HTTPStatus
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_BASE
from core.config import Settings, get_settings

STREAMED = {("POST", "/v1/uploads")}  # routes that stream their body themselves
_STREAMED_PUT = re.compile(r"^/v1/uploads/sessions/[^/]+$")  # a resumable upload's chunk


def streams_body(method: str, path: str) -> bool:
    """Whether the route streams its body itself (uploads), so no JSON size limit applies."""
    path = path.rstrip("/")
    return (method, path) in STREAMED or (method == "PUT" and bool(_STREAMED_PUT.match(path)))


class BodyRefused(Exception):
    """The body broke a limit; the middleware answers ``status``/``code`` and closes."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _problem_messages(status: int, code: str, detail: str) -> list[Message]:
    body = json.dumps(
        {
            "type": PROBLEM_BASE + code,
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                # a slow client is dropped at once; a large body is drained (for a bounded
                # time, by the protocol) so that the client reads the 413, not a reset
                *([(b"connection", b"close")] if status == 408 else []),
            ],
        },
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


class _Clock:
    """When the body must be complete by: the deadline, and the minimum-rate line."""

    def __init__(self, s: Settings) -> None:
        self.t0 = time.monotonic()
        self.rate, self.grace, self.deadline = (
            s.body_min_rate_bytes_s,
            s.body_rate_grace_s,
            s.body_timeout_s,
        )
        self.received = 0

    def wait_limit(self) -> tuple[float, str]:
        """Seconds the next chunk may take, and the code to answer if it takes longer."""
        now = time.monotonic() - self.t0
        limits = []
        if self.deadline > 0:
            limits.append((self.deadline - now, "body_timeout"))
        if self.rate > 0:
            # the bytes received so far keep the average above the rate until this time
            limits.append((self.grace + self.received / self.rate - now, "body_too_slow"))
        if not limits:
            return float("inf"), ""
        return min(limits)

    def refusal(self, code: str) -> BodyRefused:
        if code == "body_timeout":
            return BodyRefused(
                408,
                code,
                f"the request body did not arrive within {self.deadline:g} s (MGS_BODY_TIMEOUT_S)",
            )
        return BodyRefused(
            408,
            code,
            f"the request body arrived slower than {self.rate} bytes/s "
            "(MGS_BODY_MIN_RATE_BYTES_S); send it faster or from closer",
        )


class BodyLimits:
    """Pure ASGI middleware enforcing the body rate, deadline and size (see the module doc)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        clock = _Clock(self.settings)
        started = [False]

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        async def timed_receive() -> Message:
            limit, code = clock.wait_limit()
            if limit <= 0:
                raise clock.refusal(code)
            try:
                with anyio.fail_after(limit if limit != float("inf") else None):
                    message = await receive()
            except TimeoutError:
                raise clock.refusal(code) from None
            if message["type"] == "http.request":
                clock.received += len(message.get("body", b""))
            return message

        try:
            if streams_body(scope["method"], scope["path"]):
                await self.app(scope, timed_receive, tracked_send)
                return
            body = await self._read_small(scope, timed_receive)
        except BodyRefused as e:
            if not started[0]:
                for m in _problem_messages(e.status, e.code, e.detail):
                    await send(m)
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_small(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self.settings.max_json_bytes
        too_large = BodyRefused(
            413,
            "body_too_large",
            f"the request body is larger than {limit} bytes (MGS_MAX_JSON_BYTES)",
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect once the client goes

    return replay


# --- security headers --------------------------------------------------------------------

API_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net {hashes}; "
    "style-src https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src https://fonts.gstatic.com; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _docs_csp(html: bytes) -> str:
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return DOCS_CSP.format(hashes=hashes).replace("  ", " ")


class SecurityHeaders:
    """nosniff everywhere; CSP on API responses and the docs (the console sets its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(DOCS_PATHS):
            await self._docs(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", API_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, add_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The docs pages are small: buffered, their inline scripts hashed into the CSP."""
        start: dict[str, Any] = {}
        body = bytearray()

        async def buffer(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                headers = [
                    (k, v)
                    for k, v in start.get("headers", [])
                    if k.lower() not in (b"content-security-policy", b"x-content-type-options")
                ]
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", _docs_csp(bytes(body)).encode()),
                ]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": bytes(body), "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, buffer)


# --- header timeout (uvicorn protocol) ----------------------------------------------------


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover (httptools comes with uvicorn[standard])
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """httptools protocol + a header timer (and no body trickle after the response)."""

        header_timeout_s: float = 15.0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.header_timeout_s = get_settings().header_timeout_s
            # how long an unread body may take to drain after an early answer
            self.linger_s = 2 * max(self.header_timeout_s, 5.0)
            self._header_timer: Any = None
            self._drain_timer: Any = None
            self._draining: Any = None

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            if self.header_timeout_s > 0:
                self._header_timer = self.loop.call_later(
                    self.header_timeout_s, self._header_timeout
                )

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.transport is None or self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being served (headers done); not ours to cut
            body = json.dumps(
                {
                    "type": PROBLEM_BASE + "header_timeout",
                    "title": "Request Timeout",
                    "status": 408,
                    "detail": f"the request headers did not arrive within {self.header_timeout_s:g} s",
                    "code": "header_timeout",
                }
            ).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\n"
                + b"content-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
            self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # a new request on a kept-alive connection
                self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._disarm_header_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            cycle = self.cycle
            super().on_response_complete()
            if cycle is not None and cycle.more_body and not self.transport.is_closing():
                # answered before the body was read (401, 413, 408 ...): the rest of the body
                # is read and dropped (closing now would reset the connection and the client
                # could lose the answer), but for a bounded time, then the connection closes:
                # a client cannot keep it by trickling the rest (and the answer said close)
                self._draining = cycle
                self._drain_timer = self.loop.call_later(self.linger_s, self._close_now)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self._draining is not None and self.cycle is self._draining:
                # the dropped body is all in: the connection may serve the next request
                self._draining = None
                if self._drain_timer is not None:
                    self._drain_timer.cancel()
                    self._drain_timer = None
                self._unset_keepalive_if_required()
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

        def _close_now(self) -> None:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            self._draining = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()
