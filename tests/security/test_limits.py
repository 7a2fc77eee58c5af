"""Items 9 and 12: upload limits (413 before much reaches disk, stalled bodies cut off,
hostile names never reach a storage key) and per-key rate / per-tenant job limits (429 +
Retry-After), against live API processes with strict settings."""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import make_key, start_api
from tests.service.helpers import BRAIN_H5AD, client, upload

PROBLEM = "application/problem+json"
LIMIT = 8 * 1024 * 1024  # MGS_MAX_UPLOAD_BYTES of service_env
MARGIN = 2 * 1024 * 1024  # one flush buffer (1 MiB) plus one socket read, rounded up


@pytest.fixture(scope="module")
def strict(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """Two API processes sharing Redis, with small limits and their own TMPDIR."""
    tmp = tmp_path_factory.mktemp("upload-tmp")
    env = {
        **service_env,
        "TMPDIR": str(tmp),
        "MGS_RATE_LIMIT_PER_MINUTE": "30",
        "MGS_MAX_CONCURRENT_JOBS_PER_TENANT": "3",
        "MGS_UPLOAD_IDLE_TIMEOUT_S": "2",
    }
    logs = tmp_path_factory.mktemp("strict-logs")
    p1, base1 = start_api(env, logs / "api1.log")
    p2, base2 = start_api(env, logs / "api2.log")
    yield {"bases": [base1, base2], "tmp": tmp, "env": env, "procs": [p1, p2]}
    p1.stop()
    p2.stop()


def _key(env: dict[str, str]) -> str:
    key, _ = make_key(env, f"lab-lim-{uuid.uuid4().hex[:6]}")
    return f"Bearer {key}"


def _disk_use(d: Path) -> int:
    total = 0
    for p in d.rglob("*"):
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def test_over_limit_refused_before_it_reaches_disk(strict: dict[str, Any]) -> None:
    tmp: Path = strict["tmp"]
    peak = [0]

    def body() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        for _ in range(3 * LIMIT // (256 * 1024)):
            peak[0] = max(peak[0], _disk_use(tmp))
            yield b"\0" * (256 * 1024)

    with client(strict["bases"][0], _key(strict["env"])) as c:
        try:
            r = c.post(
                "/v1/uploads", content=body(), headers={"content-type": "application/octet-stream"}
            )
            assert r.status_code == 413, r.text
            assert r.json()["code"] == "upload_too_large"
        except Exception as e:  # the server may close the socket while we still send
            assert "413" in str(e) or isinstance(e, (OSError,)) or "Remote" in type(e).__name__, e
        # declared too large (Content-Length): refused before the body is read
        r = upload(c, b"\0" * (LIMIT + 1), "big.h5ad")
        assert r.status_code == 413 and r.headers["content-type"].startswith(PROBLEM)
        assert c.get("/v1/jobs").status_code == 200
    assert peak[0] <= LIMIT + MARGIN, f"{peak[0]:,} bytes reached disk (limit {LIMIT:,})"
    deadline = time.time() + 10
    while _disk_use(tmp) and time.time() < deadline:
        time.sleep(0.2)
    assert _disk_use(tmp) == 0, "the refused upload's temporary file was left behind"


def test_stalled_body_times_out(strict: dict[str, Any]) -> None:
    host, port = strict["bases"][0].removeprefix("http://").split(":")
    auth = _key(strict["env"])
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(
            (
                f"POST /v1/uploads HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
            ).encode()
            + b"\x89HDF\r\n\x1a\n"
        )
        t0 = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - t0
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert waited < 15
    with client(strict["bases"][0], auth) as c:
        assert c.get("/healthz").status_code == 200


NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32",
    "a\x00b.h5ad",
    "\u202eevil\u202d.h5ad",
    "ｆｕｌｌ／ｗｉｄｔｈ.h5ad",
    "e\u0301.h5ad",
    "/abs/path.h5ad",
    "..",
    "\ud800",  # lone surrogate (sent percent-encoded as bytes httpx can make)
    "x" * 300,
]


def test_hostile_names_never_reach_a_storage_key(
    strict: dict[str, Any], service_env: dict[str, str], s3_server: dict[str, str]
) -> None:
    data = BRAIN_H5AD.read_bytes()
    ids = []
    with client(strict["bases"][1], _key(strict["env"])) as c:
        for name in NAMES:
            try:
                r = upload(c, data, name)
            except UnicodeEncodeError:
                continue
            assert r.status_code in (201, 422), (name, r.text)
            if r.status_code == 201:
                got = r.json()
                ids.append(got["id"])
                shown = got["filename"]
                assert "/" not in shown and "\\" not in shown and "\x00" not in shown
                assert shown not in ("", ".", "..") and "\u202e" not in shown
                assert len(shown) <= 255
        assert c.get("/healthz").status_code == 200
    assert len(ids) >= len(NAMES) - 2
    import boto3
    import psycopg

    url = service_env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        keys = [r[0] for r in conn.execute("SELECT storage_key FROM uploads").fetchall()]
    pattern = re.compile(r"^uploads/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[0-9a-f-]{36}$")
    assert keys and all(pattern.match(k) for k in keys), [k for k in keys if not pattern.match(k)]
    s3 = boto3.client("s3", endpoint_url=s3_server["endpoint"])
    objs = s3.list_objects_v2(Bucket=s3_server["bucket"]).get("Contents", [])
    for o in objs:
        k = o["Key"]
        assert ".." not in k.split("/") and "\x00" not in k and "\\" not in k, k
        assert all(ord(ch) < 128 for ch in k), k


def test_rate_limit_shared_across_api_processes(strict: dict[str, Any]) -> None:
    auth = _key(strict["env"])
    other = _key(strict["env"])
    c1, c2 = client(strict["bases"][0], auth), client(strict["bases"][1], auth)
    try:
        codes = [
            (c1 if i % 2 else c2).get("/v1/jobs", params={"limit": 1}).status_code
            for i in range(40)
        ]
        ok = codes.count(200)
        assert 30 <= ok <= 32, codes  # 30 per minute across both processes (+ refill while running)
        r = c1.get("/v1/jobs")
        assert r.status_code == 429 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["code"] == "rate_limited"
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 3
        with client(strict["bases"][0], other) as c3:  # another key has its own bucket
            assert c3.get("/v1/jobs").status_code == 200
        time.sleep(retry + 0.2)
        assert c2.get("/v1/jobs").status_code == 200
    finally:
        c1.close()
        c2.close()


def test_concurrent_jobs_per_tenant(strict: dict[str, Any]) -> None:
    auth = _key(strict["env"])
    with client(strict["bases"][0], auth) as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
        jobs = [
            c.post("/v1/jobs", json={"upload_id": up}, headers={"Idempotency-Key": f"k{i}"})
            for i in range(3)
        ]
        assert [j.status_code for j in jobs] == [202, 202, 202]
        r = c.post("/v1/jobs", json={"upload_id": up})
        assert r.status_code == 429 and r.headers["content-type"].startswith(PROBLEM), r.text
        assert r.json()["code"] == "too_many_jobs" and int(r.headers["Retry-After"]) >= 1
        # a retried submit (same Idempotency-Key) still returns its job
        again = c.post("/v1/jobs", json={"upload_id": up}, headers={"Idempotency-Key": "k0"})
        assert again.status_code == 202 and again.json()["id"] == jobs[0].json()["id"]
        assert c.post(f"/v1/jobs/{jobs[0].json()['id']}/cancel").status_code == 200
        assert c.post("/v1/jobs", json={"upload_id": up}).status_code == 202
