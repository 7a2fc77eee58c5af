"""Issue 18, items 4 to 7: what an outside probe found, each reproduced against a live API
process (real sockets, real Postgres, Redis and storage) and then held shut.

4. slow clients (header and body trickles) are cut off;
5. NUL bytes, broken callback URLs and over-long artifact names get a 4xx, never a 500;
6. a job's stored error is a code and a sentence: no traceback, no server path;
7. 405s name the allowed methods; callback addresses that embed IPv4 (6to4, Teredo, NAT64,
   IPv4-compatible/-mapped) are refused; JSON bodies are size-limited; HTML carries CSP and
   nosniff; /metrics takes an optional bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from core.jobs.errors import CallbackRefused
from core.jobs.webhooks import check_callback_url
from tests.service.conftest import make_key, start_api, start_relay, start_worker, wait_state
from tests.service.helpers import BRAIN_H5AD, VISIUM_DIR, client, upload

PROBLEM = "application/problem+json"
METRICS_TOKEN = "metrics-" + uuid.uuid4().hex
JSON_LIMIT = 64 * 1024
MIN_RATE = 2000  # bytes/s
GRACE_S = 2.0
BODY_DEADLINE_S = 6.0
HEADER_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def probe(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """An API process as production runs it (no private callbacks) with small limits,
    storing in a local folder (the file store is where an over-long name once gave a 500)."""
    tmp = tmp_path_factory.mktemp("probe")
    env = {
        **service_env,
        "MGS_STORAGE_URL": f"file://{tmp / 'store'}",
        "MGS_WEBHOOK_ALLOW_PRIVATE": "false",
        "MGS_RATE_LIMIT_PER_MINUTE": "0",
        "MGS_METRICS_TOKEN": METRICS_TOKEN,
        "MGS_MAX_JSON_BYTES": str(JSON_LIMIT),
        "MGS_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "MGS_BODY_MIN_RATE_BYTES_S": str(MIN_RATE),
        "MGS_BODY_RATE_GRACE_S": str(GRACE_S),
        "MGS_BODY_TIMEOUT_S": str(BODY_DEADLINE_S),
    }
    proc, base = start_api(env, tmp / "api.log")
    key, _ = make_key(env, f"lab-probe-{uuid.uuid4().hex[:6]}")
    with client(base, f"Bearer {key}") as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
    yield {
        "base": base,
        "auth": f"Bearer {key}",
        "upload": up,
        "store": tmp / "store",
        "env": env,
        "proc": proc,
    }
    proc.stop()


def _hostport(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def _is_problem(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    if code:
        assert r.json()["code"] == code, r.text


# --- item 5: 4xx, not 500 ---------------------------------------------------------------


def test_nul_in_external_sample_id_is_422(probe: dict[str, Any]) -> None:
    with client(probe["base"], probe["auth"]) as c:
        r = c.post("/v1/jobs", json={"upload_id": probe["upload"], "external_sample_id": "S\x001"})
    _is_problem(r, 422, "validation_error")


def test_nul_in_markers_is_422(probe: dict[str, Any]) -> None:
    with client(probe["base"], probe["auth"]) as c:
        r = c.post(
            "/v1/jobs", json={"upload_id": probe["upload"], "options": {"markers": "a\x00b"}}
        )
    _is_problem(r, 422, "validation_error")


def test_nul_in_callback_url_is_422(api: str, tenant_a: dict[str, str]) -> None:
    """On the shared API private callbacks are allowed: the syntax must be checked anyway."""
    with client(api, tenant_a["auth"]) as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
        r = c.post("/v1/jobs", json={"upload_id": up, "callback_url": "http://127.0.0.1/\x00x"})
    assert r.status_code == 422, r.text


def test_nul_in_query_is_422(probe: dict[str, Any]) -> None:
    with client(probe["base"], probe["auth"]) as c:
        r = c.get("/v1/jobs", params={"external_sample_id": "S\x001"})
    _is_problem(r, 422, "validation_error")


BROKEN_URLS = [
    "http://example.com:99999/hook",
    "http://example.com:65536/hook",
    "http://example.com:8o/hook",
    "http://example.com:-1/hook",
    "http://[::1/hook",
    "http://[zz::1]/hook",
    "http://[::1]x/hook",
    "http://exa mple.com/hook",
]


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_broken_callback_url_is_422(api: str, tenant_a: dict[str, str], url: str) -> None:
    with client(api, tenant_a["auth"]) as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
        r = c.post("/v1/jobs", json={"upload_id": up, "callback_url": url})
    _is_problem(r, 422, "callback_url_refused")


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_guard_refuses_broken_urls_even_with_private_allowed(url: str) -> None:
    for allow in (True, False):
        with pytest.raises(CallbackRefused):
            check_callback_url(url, allow_private=allow)


def _succeeded_job(probe: dict[str, Any], files: dict[str, bytes]) -> str:
    """A job submitted through the API, then marked succeeded with ``files`` as its results
    (written into the API's storage folder; no worker needed)."""
    with client(probe["base"], probe["auth"]) as c:
        r = c.post("/v1/jobs", json={"upload_id": probe["upload"]})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
    prefix = f"jobs/{job_id}/attempt-1"
    for name, data in files.items():
        p = probe["store"] / prefix / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    url = probe["env"]["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE outbox SET sent_at = now() WHERE job_id = %s", (job_id,))
        conn.execute(
            "UPDATE jobs SET state = 'succeeded', stage = 'reporting', progress = 1, "
            "report_prefix = %s, analysis_prefix = %s, finished_at = now() WHERE id = %s",
            (prefix, prefix, job_id),
        )
    return job_id


@pytest.mark.parametrize(
    "name", ["x" * 256, "x" * 300, "figures/" + "y" * 400, "a/" * 600 + "b", "z" * 5000]
)
def test_long_artifact_name_is_404(probe: dict[str, Any], name: str) -> None:
    job_id = _succeeded_job(probe, {"spots.csv": b"a,b\n1,2\n"})
    with client(probe["base"], probe["auth"]) as c:
        r = c.get(f"/v1/jobs/{job_id}/artifacts/{name}")
        assert r.status_code in (404, 414, 422), r.text
        assert r.status_code != 404 or r.json()["code"] == "artifact_not_found"
        assert c.get(f"/v1/jobs/{job_id}/artifacts/spots.csv").status_code == 200


# --- item 7: headers, SSRF forms, body size, metrics ----------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("DELETE", "/v1/jobs", {"GET", "POST"}),
        ("PUT", "/v1/uploads", {"POST"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("DELETE", f"/v1/jobs/{uuid.uuid4()}", {"GET", "HEAD"}),
        ("GET", f"/v1/jobs/{uuid.uuid4()}/cancel", {"POST"}),
        ("POST", "/metrics", {"GET", "HEAD"}),
    ],
)
def test_405_names_the_allowed_methods(
    probe: dict[str, Any], method: str, path: str, expected: set[str]
) -> None:
    with client(probe["base"], probe["auth"]) as c:
        r = c.request(method, path)
    _is_problem(r, 405, "method_not_allowed")
    allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
    assert expected <= allow, r.headers.get("allow")
    assert method not in allow


EMBEDDED_V4 = [
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254 (cloud metadata)
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[2001::1]/",  # Teredo prefix
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::a9fe:a9fe]/",  # IPv4-compatible 169.254.169.254
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated (SIIT)
    "http://[64:ff9b::7f00:1]/",  # NAT64 well-known prefix, 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64, 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64, 10.0.0.1
]


@pytest.mark.parametrize("url", EMBEDDED_V4)
def test_guard_refuses_ipv6_forms_that_embed_internal_ipv4(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check_callback_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["http://[2606:4700:4700::1111]/hook", "http://[2002:5db8:d70e::1]/"]
)
def test_guard_allows_public_ipv6(url: str) -> None:
    check_callback_url(url, allow_private=False)  # 6to4 of a public IPv4 is public


@pytest.mark.parametrize("url", EMBEDDED_V4[:4])
def test_submit_refuses_embedded_ipv4(probe: dict[str, Any], url: str) -> None:
    with client(probe["base"], probe["auth"]) as c:
        r = c.post("/v1/jobs", json={"upload_id": probe["upload"], "callback_url": url})
    _is_problem(r, 422, "callback_url_refused")


def test_json_body_over_limit_is_413(probe: dict[str, Any]) -> None:
    big = {"upload_id": probe["upload"], "external_sample_id": "x" * (JSON_LIMIT * 2)}
    with client(probe["base"], probe["auth"]) as c:
        r = c.post("/v1/jobs", json=big)  # with Content-Length
        _is_problem(r, 413, "body_too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            yield b'{"upload_id": "' + probe["upload"].encode() + b'", "external_sample_id": "'
            for _ in range(4):
                yield b"y" * JSON_LIMIT
            yield b'"}'

        r = c.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
        _is_problem(r, 413, "body_too_large")
        # a body under the limit still works
        r = c.post("/v1/jobs", json={"upload_id": probe["upload"], "external_sample_id": "ok"})
        assert r.status_code == 202, r.text


def test_report_html_has_csp_and_nosniff(probe: dict[str, Any]) -> None:
    html = (
        b"<html><body><img src='data:image/png;base64,AA=='><script>alert(1)</script></body></html>"
    )
    job_id = _succeeded_job(probe, {"report.html": html, "report.json": b"{}"})
    with client(probe["base"], probe["auth"]) as c:
        for path in (
            f"/v1/jobs/{job_id}/report?format=html",
            f"/v1/jobs/{job_id}/artifacts/report.html",
        ):
            r = c.get(path)
            assert r.status_code == 200, r.text
            assert r.headers["x-content-type-options"] == "nosniff"
            csp = _csp(r.headers["content-security-policy"])
            assert csp["default-src"] == ["'none'"]
            assert "data:" in csp["img-src"]
            assert "script-src" not in csp or csp["script-src"] == ["'none'"]
            assert csp["frame-ancestors"] == ["'none'"]
        r = c.get(f"/v1/jobs/{job_id}")
        assert r.headers["x-content-type-options"] == "nosniff"


def _csp(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_docs_have_a_csp_that_lets_swagger_load(probe: dict[str, Any]) -> None:
    with client(probe["base"], None) as c:
        r = c.get("/docs")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = _csp(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    # every external script and stylesheet of the page is allowed, every inline script hashed
    for src in re.findall(r'<script src="([^"]+)"', r.text):
        assert any(src.startswith(s) for s in csp["script-src"] if s.startswith("https://")), src
    for href in re.findall(
        r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"|<link[^>]+href="([^"]+)"[^>]+rel="stylesheet"',
        r.text,
    ):
        h = href[0] or href[1]
        assert any(h.startswith(s) for s in csp["style-src"] if s.startswith("https://")), h
    for body in re.findall(r"<script>(.*?)</script>", r.text, flags=re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"], "an inline script is not allowed"
    assert "'self'" in csp["connect-src"]  # the spec and "try it out"
    assert csp["frame-ancestors"] == ["'none'"]


def test_metrics_need_the_token_when_set(probe: dict[str, Any], api: str) -> None:
    with client(probe["base"], None) as c:
        _is_problem(c.get("/metrics"), 401, "unauthorized")
        _is_problem(
            c.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
        )
        _is_problem(
            c.get("/metrics", headers={"Authorization": probe["auth"]}), 401, "unauthorized"
        )
        r = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200 and "mgs_jobs" in r.text
    with client(api, None) as c:  # no token set: open, as before
        assert c.get("/metrics").status_code == 200


# --- item 4: slow clients ----------------------------------------------------------------


def _read_until_closed(s: socket.socket, limit_s: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or ``limit_s`` passes (False)."""
    s.settimeout(0.5)
    data = b""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _trickle(s: socket.socket, pieces: list[bytes], every_s: float) -> bool:
    """Send ``pieces`` one by one; False as soon as the server has closed the connection."""
    for p in pieces:
        try:
            s.sendall(p)
        except OSError:
            return False
        time.sleep(every_s)
        s.setblocking(False)
        try:
            if s.recv(65536, socket.MSG_PEEK) == b"":
                return False
        except BlockingIOError:
            pass
        except OSError:
            return False
        finally:
            s.setblocking(True)
    return True


def test_header_trickle_is_cut_off(probe: dict[str, Any]) -> None:
    host, port = _hostport(probe["base"])
    lines = [f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode()] + [
        f"X-Slow-{i}: {i}\r\n".encode() for i in range(40)
    ]
    with socket.create_connection((host, port), timeout=10) as s:
        finished = _trickle(s, lines, 0.5)  # 20 s of headers, a line every 0.5 s
        assert not finished, (
            "a client sending one header line every 0.5 s kept its connection for 20 s"
        )
        data, closed = _read_until_closed(s, 5)
    assert closed
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]


def test_idle_connection_without_a_request_is_closed(probe: dict[str, Any]) -> None:
    host, port = _hostport(probe["base"])
    with socket.create_connection((host, port), timeout=10) as s:
        _, closed = _read_until_closed(s, HEADER_TIMEOUT_S * 5)
    assert closed, "a connection that never sent a request line stayed open"


def _slow_body(
    probe: dict[str, Any], path: str, ctype: str, total: int, piece: int, every_s: float
) -> tuple[bytes, bool]:
    host, port = _hostport(probe["base"])
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {probe['auth']}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {total}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head)
        finished = _trickle(s, [b"x" * piece] * (total // piece), every_s)
        data, closed = _read_until_closed(s, 10)
    return data, finished and not closed


@pytest.mark.parametrize(
    ("path", "ctype"),
    [("/v1/uploads", "application/octet-stream"), ("/v1/jobs", "application/json")],
)
def test_body_trickle_is_cut_off_with_408(probe: dict[str, Any], path: str, ctype: str) -> None:
    # one byte every 0.5 s: above the per-chunk idle timeout, far below the minimum rate
    data, survived = _slow_body(probe, path, ctype, total=60, piece=1, every_s=0.5)
    assert not survived, "a body trickled at 2 bytes/s was never cut off"
    assert data.startswith(b"HTTP/1.1 408"), data[:300]
    assert b"body_too_slow" in data
    with client(probe["base"], probe["auth"]) as c:
        assert c.get("/healthz").status_code == 200


def test_body_over_the_deadline_is_cut_off(probe: dict[str, Any]) -> None:
    # above the minimum rate (4 KB/s vs 2 KB/s) but it would take 15 s, over the 6 s deadline
    data, survived = _slow_body(
        probe, "/v1/uploads", "application/octet-stream", total=60_000, piece=1000, every_s=0.25
    )
    assert not survived
    assert data.startswith(b"HTTP/1.1 408"), data[:300]
    assert b"body_timeout" in data


def test_trickle_after_an_early_answer_is_cut_off(probe: dict[str, Any]) -> None:
    """401 before the body is read: the rest is read and dropped for a bounded time only."""
    host, port = _hostport(probe["base"])
    head = (
        f"POST /v1/uploads HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head)
        finished = _trickle(s, [b"x"] * 99, 0.5)  # 50 s of body, a byte every 0.5 s
        data, closed = _read_until_closed(s, 10)
    assert data.startswith(b"HTTP/1.1 401"), data[:200]
    assert not finished and closed, "a client kept its connection by trickling an unread body"


def test_a_steady_upload_is_not_cut_off(probe: dict[str, Any]) -> None:
    data = BRAIN_H5AD.read_bytes()
    with client(probe["base"], probe["auth"]) as c:

        def chunks() -> Iterator[bytes]:  # ~3 s at well above the minimum rate
            step = max(1, len(data) // 12)
            for i in range(0, len(data), step):
                yield data[i : i + step]
                time.sleep(0.25)

        r = c.post(
            "/v1/uploads", content=chunks(), headers={"content-type": "application/octet-stream"}
        )
    assert r.status_code == 201, r.text


def test_thirty_slow_connections_do_not_starve_the_api(probe: dict[str, Any]) -> None:
    host, port = _hostport(probe["base"])
    socks = []
    try:
        for _ in range(30):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode())
            socks.append(s)
        with client(probe["base"], None) as c:
            assert c.get("/healthz").status_code == 200
        closed = 0
        for s in socks:
            _, was_closed = _read_until_closed(s, HEADER_TIMEOUT_S * 4)
            closed += was_closed
        assert closed == 30
    finally:
        for s in socks:
            s.close()


# --- item 6: job errors without internals --------------------------------------------------


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


SERVER_PATH = re.compile(
    r"(/tmp/|/var/|/home/|/work/|/usr/|/proc/|mgs-extract-|mgs-job-|site-packages)"
)


def test_job_errors_carry_no_traceback_or_path(
    api: str, service_env: dict[str, str], tenant_a: dict[str, str], tmp_path_factory: Any
) -> None:
    h5 = (VISIUM_DIR / "filtered_feature_bc_matrix.h5").read_bytes()
    sample = [
        (f"outs/{p.relative_to(VISIUM_DIR).as_posix()}", p.read_bytes())
        for p in sorted(VISIUM_DIR.rglob("*"))
        if p.is_file()
    ]
    cases = {
        # a file, then a member below it as if it were a folder: unpacking once crashed
        "nested": _zip([*sample, ("outs/a", b"x"), ("outs/a/b", b"y")]),
        "no_spatial": _zip([("outs/filtered_feature_bc_matrix.h5", h5)]),
    }
    logs = tmp_path_factory.mktemp("probe-worker")
    relay = start_relay(service_env, logs / "relay.log")
    worker = start_worker(service_env, logs / "analysis.log", "analysis")
    try:
        jobs = {}
        with client(api, tenant_a["auth"]) as c:
            for name, data in cases.items():
                r = upload(c, data, f"{name}.zip")
                if r.status_code == 422:  # refused at upload (the member list is checked)
                    assert not SERVER_PATH.search(r.json()["detail"]), r.text
                    continue
                assert r.status_code == 201, r.text
                j = c.post("/v1/jobs", json={"upload_id": r.json()["id"]})
                assert j.status_code == 202, j.text
                jobs[name] = j.json()["id"]
            for name, job_id in jobs.items():
                job = wait_state(c, job_id, {"failed", "succeeded"}, timeout=180)
                assert job["state"] == "failed", (name, job)
                err = job["error"]
                assert err["code"] and re.fullmatch(r"[a-z_]+", err["code"]), err
                detail = err["detail"]
                assert "Traceback" not in detail and 'File "' not in detail, (name, detail)
                assert not SERVER_PATH.search(detail), (name, detail)
                assert "\n" not in detail.strip(), (name, detail)
                assert len(detail) <= 500, (name, detail)
            if "no_spatial" in jobs:
                no_spatial = c.get(f"/v1/jobs/{jobs['no_spatial']}").json()["error"]
                assert no_spatial["code"] == "missing_coordinates"
                assert "outs" in no_spatial["detail"]  # the path inside the sample stays
        time.sleep(1)
        log = worker.tail(200_000)
        for job_id in jobs.values():  # the full detail is logged on the server
            assert job_id in log, log[-2000:]
    finally:
        worker.stop()
        relay.stop()


def test_sanitiser_cases() -> None:
    from core.jobs.sanitize import public_detail

    tb = (
        "the sample could not be read (validator exited with 1): Traceback (most recent call last):\n"
        '  File "/work/main/core/io/archive.py", line 90, in extract_archive\n'
        "NotADirectoryError: [Errno 20] Not a directory: '/tmp/mgs-extract-abc123/outs/a/b'"
    )
    got = public_detail("validation_crashed", tb)
    assert "Traceback" not in got and "/tmp" not in got and "archive.py" not in got, got
    assert got.startswith("the sample could not be read")
    assert (
        public_detail("missing_coordinates", "/tmp/mgs-extract-k2j3/outs has no spatial/ folder")
        == "outs has no spatial/ folder"
    )
    assert public_detail("x", "/var/lib/data/thing.h5ad is broken") == "thing.h5ad is broken"
    assert public_detail("x", "C:\\Users\\lab\\sample.h5ad is broken") == "sample.h5ad is broken"
    assert public_detail("x", "") == "the job failed (x)"
    long = public_detail("x", "word " * 400)
    assert len(long) <= 500
    # what is not a path stays: fractions, units, option names
    assert public_detail("x", "needs 3/4 of 8 GiB; set MGS_MEMORY_BUDGET_MB") == (
        "needs 3/4 of 8 GiB; set MGS_MEMORY_BUDGET_MB"
    )
    assert public_detail("x", "spatial/ folder missing in outs/spatial") == (
        "spatial/ folder missing in outs/spatial"
    )
    assert public_detail("x", "RuntimeError: boom at 0x7f3a2c") == "RuntimeError: boom at 0x7f3a2c"
