"""Resumable chunked uploads (/v1/uploads/sessions) against a live API (real Postgres, S3 on
moto), with a small chunk size so that a real sample takes several chunks."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.service.conftest import settings_from, start_api, start_relay, start_worker, wait_state
from tests.service.helpers import BRAIN_H5AD, client, spaceranger_targz

CHUNK = 128 * 1024
PROBLEM = "application/problem+json"


def is_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["detail"]
    return body


@pytest.fixture(scope="module")
def env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "MGS_UPLOAD_CHUNK_BYTES": str(CHUNK), "MGS_REPORT_BACKEND": "template"}


@pytest.fixture(scope="module")
def chunked_api(env: dict[str, str], tmp_path_factory: Any) -> Iterator[str]:
    proc, base = start_api(env, tmp_path_factory.mktemp("chunked-logs") / "api.log")
    yield base
    proc.stop()


def put_chunk(c: httpx.Client, sid: str, data: bytes, start: int, total: int) -> httpx.Response:
    end = min(start + CHUNK, total)
    return c.put(
        f"/v1/uploads/sessions/{sid}",
        content=data[start:end],
        headers={
            "content-range": f"bytes {start}-{end - 1}/{total}",
            "content-type": "application/octet-stream",
        },
    )


def send_all(c: httpx.Client, sid: str, data: bytes) -> None:
    received = c.get(f"/v1/uploads/sessions/{sid}").json()["received"]
    for start in range(received, len(data), CHUNK):
        r = put_chunk(c, sid, data, start, len(data))
        assert r.status_code == 200, r.text
        assert r.json()["received"] == min(start + CHUNK, len(data))


def test_chunked_upload_of_a_real_sample_runs_a_job(
    chunked_api: str, env: dict[str, str], tenant_a: dict[str, str], tmp_path: Any
) -> None:
    data = spaceranger_targz()  # the real Visium sample, as the end-to-end test sends it
    assert len(data) > 3 * CHUNK
    with client(chunked_api, tenant_a["auth"]) as c:
        r = c.post("/v1/uploads/sessions", json={"filename": "visium.tar.gz", "size": len(data)})
        assert r.status_code == 201, r.text
        sess = r.json()
        assert sess["chunk_size"] == CHUNK and sess["received"] == 0 and sess["upload_id"] is None
        send_all(c, sess["id"], data)
        r = c.post(f"/v1/uploads/sessions/{sess['id']}/complete")
        assert r.status_code == 201, r.text
        up = r.json()
        assert up["size"] == len(data) and up["format"] == "tar.gz"
        assert up["sha256"] == hashlib.sha256(data).hexdigest()
        assert up["filename"] == "visium.tar.gz"
        # completing again answers the same upload; the session names it
        again = c.post(f"/v1/uploads/sessions/{sess['id']}/complete")
        assert again.status_code == 200 and again.json() == up
        assert c.get(f"/v1/uploads/sessions/{sess['id']}").json()["upload_id"] == up["id"]
        # no chunk is kept once the upload is stored; the object is the file
        from core.storage import open_store

        store = open_store(settings_from(env))
        assert store.list(f"upload-sessions/{tenant_of(c)}/{sess['id']}/") == []
        assert b"".join(store.iter_bytes(f"uploads/{tenant_of(c)}/{up['id']}")) == data
        is_problem(put_chunk(c, sess["id"], data, 0, len(data)), 409, "upload_session_completed")
        # the upload is a job's input like a one-shot upload
        procs = [
            start_relay(env, tmp_path / "relay.log"),
            start_worker(env, tmp_path / "analysis.log", "analysis"),
            start_worker(env, tmp_path / "report.log", "report"),
        ]
        try:
            job = c.post(
                "/v1/jobs",
                json={"upload_id": up["id"], "options": {"backend": "template", "seed": 0}},
            )
            assert job.status_code in (201, 202), job.text
            done = wait_state(c, job.json()["id"], {"succeeded", "failed", "canceled"}, timeout=600)
            assert done["state"] == "succeeded", (done.get("error"), [p.tail() for p in procs])
        finally:
            for p in procs:
                p.stop()


def tenant_of(c: httpx.Client) -> str:
    r = c.get("/v1/me")
    assert r.status_code == 200, r.text
    tenant: str = r.json()["tenant_id"]
    return tenant


def _dropped_chunk(base: str, auth: str, sid: str, start: int, total: int, data: bytes) -> None:
    """Send a chunk's headers and half its body, then drop the connection."""
    u = urlparse(base)
    end = min(start + CHUNK, total)
    head = (
        f"PUT /v1/uploads/sessions/{sid} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        f"Authorization: {auth}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Range: bytes {start}-{end - 1}/{total}\r\nContent-Length: {end - start}\r\n\r\n"
    ).encode()
    with socket.create_connection((u.hostname, u.port)) as s:
        s.sendall(head + data[start : start + (end - start) // 2])
        time.sleep(0.5)


def test_resume_after_an_interrupted_chunk(chunked_api: str, tenant_a: dict[str, str]) -> None:
    data = BRAIN_H5AD.read_bytes()
    total = len(data)
    with client(chunked_api, tenant_a["auth"]) as c:
        sid = c.post("/v1/uploads/sessions", json={"filename": "b.h5ad", "size": total}).json()[
            "id"
        ]
        assert put_chunk(c, sid, data, 0, total).status_code == 200
        _dropped_chunk(chunked_api, tenant_a["auth"], sid, CHUNK, total, data)
        deadline = time.time() + 10
        while time.time() < deadline:  # the server sees the drop and records nothing
            got = c.get(f"/v1/uploads/sessions/{sid}").json()
            assert got["received"] == CHUNK
            time.sleep(0.2)
        # a re-sent received chunk (its answer was lost) is harmless
        r = put_chunk(c, sid, data, 0, total)
        assert r.status_code == 200 and r.json()["received"] == CHUNK
        # completing early is refused; then the rest, from the server's offset
        is_problem(c.post(f"/v1/uploads/sessions/{sid}/complete"), 409, "upload_incomplete")
        send_all(c, sid, data)
        up = c.post(f"/v1/uploads/sessions/{sid}/complete").json()
        assert up["sha256"] == hashlib.sha256(data).hexdigest()


def test_bad_ranges(chunked_api: str, tenant_a: dict[str, str]) -> None:
    data = BRAIN_H5AD.read_bytes()
    total = len(data)
    with client(chunked_api, tenant_a["auth"]) as c:
        sid = c.post("/v1/uploads/sessions", json={"size": total}).json()["id"]
        url = f"/v1/uploads/sessions/{sid}"

        def put(body: bytes, rng: str | None) -> httpx.Response:
            headers = {"content-type": "application/octet-stream"}
            if rng is not None:
                headers["content-range"] = rng
            return c.put(url, content=body, headers=headers)

        one = data[:CHUNK]
        is_problem(put(one, None), 416, "bad_content_range")
        is_problem(put(one, "bytes=0-10"), 416, "bad_content_range")
        is_problem(put(one, f"bytes 0-{CHUNK - 1}/{total + 1}"), 416, "bad_content_range")
        is_problem(put(one[:100], "bytes 0-99/" + str(total)), 416, "bad_content_range")
        is_problem(put(one, f"bytes 5-{CHUNK + 4}/{total}"), 416, "bad_content_range")
        is_problem(put(one[:-1], f"bytes 0-{CHUNK - 1}/{total}"), 400, "chunk_length_mismatch")
        # a gap: the second chunk before the first
        body = is_problem(
            put(data[CHUNK : 2 * CHUNK], f"bytes {CHUNK}-{2 * CHUNK - 1}/{total}"),
            409,
            "upload_range_conflict",
        )
        assert "starts at byte 0" in body["detail"]
        assert c.get(url).json()["received"] == 0
        assert put(one, f"bytes 0-{CHUNK - 1}/{total}").status_code == 200
        # a re-sent received chunk must still be the chunk's length
        is_problem(put(one + b"x", f"bytes 0-{CHUNK - 1}/{total}"), 400, "chunk_length_mismatch")
        assert c.get(url).json()["received"] == CHUNK


def test_other_tenant_limits_and_sweep(
    chunked_api: str,
    env: dict[str, str],
    tenant_a: dict[str, str],
    tenant_b: dict[str, str],
) -> None:
    limit = int(env["MGS_MAX_UPLOAD_BYTES"])
    with client(chunked_api, tenant_a["auth"]) as a, client(chunked_api, tenant_b["auth"]) as b:
        is_problem(
            a.post("/v1/uploads/sessions", json={"size": limit + 1}), 413, "upload_too_large"
        )
        is_problem(a.post("/v1/uploads/sessions", json={"size": 0}), 422, "validation_error")
        # the whole-file checks run at complete, as for a one-shot upload
        text = b"just some text\n" * 20000
        sid = a.post("/v1/uploads/sessions", json={"size": len(text)}).json()["id"]
        send_all(a, sid, text)
        is_problem(a.post(f"/v1/uploads/sessions/{sid}/complete"), 415, "unsupported_format")
        # another lab sees nothing
        for r in (
            b.get(f"/v1/uploads/sessions/{sid}"),
            b.post(f"/v1/uploads/sessions/{sid}/complete"),
            put_chunk(b, sid, text, 0, len(text)),
        ):
            is_problem(r, 404, "upload_session_not_found")
        # an idle session goes, with its chunks, in the relay's sweep
        from core.db.session import make_sync_engine, make_sync_sessionmaker
        from core.jobs.cleanup import sweep_upload_sessions
        from core.storage import open_store

        settings = settings_from(env).model_copy(update={"upload_session_ttl_s": 0.0})
        store = open_store(settings)
        prefix = f"upload-sessions/{tenant_of(a)}/{sid}/"
        assert store.list(prefix)
        engine = make_sync_engine(settings.database_url)
        try:
            assert sweep_upload_sessions(make_sync_sessionmaker(engine), store, settings) >= 1
        finally:
            engine.dispose()
        is_problem(a.get(f"/v1/uploads/sessions/{sid}"), 404, "upload_session_not_found")
        assert store.list(prefix) == []
