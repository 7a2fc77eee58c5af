"""The REST API against a live server (real Postgres, Redis, S3 via moto)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
import time
import uuid
import zipfile

import pytest

from tests.service.conftest import ROOT, make_key
from tests.service.helpers import BRAIN_H5AD, client, spaceranger_targz, upload

PROBLEM = "application/problem+json"


def is_problem(r, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


@pytest.fixture(scope="module")
def brain_upload(api: str, tenant_a: dict[str, str]) -> dict:
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, BRAIN_H5AD.read_bytes(), "brain.h5ad")
        assert r.status_code == 201, r.text
        return r.json()


def test_health_ready_metrics(api: str) -> None:
    with client(api, None) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"] == {
            "database": "ok",
            "broker": "ok",
            "storage": "ok",
        }
        m = c.get("/metrics").text
        assert (
            "mgs_jobs{" in m
            and "mgs_queue_depth{" in m
            and "mgs_http_request_duration_seconds" in m
        )


def test_auth_missing_unknown_revoked(api: str, service_env: dict[str, str]) -> None:
    with client(api, None) as c:
        is_problem(c.get("/v1/jobs"), 401, "unauthorized")
    with client(api, "Bearer mgs_00000000_nope") as c:
        is_problem(c.get("/v1/jobs"), 401, "unauthorized")
    key, _ = make_key(service_env, "lab-revoke")
    with client(api, f"Bearer {key}") as c:
        assert c.get("/v1/jobs").status_code == 200
        subprocess.run(
            [sys.executable, "-m", "cli", "keys", "revoke", key],
            env=service_env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        is_problem(c.get("/v1/jobs"), 401, "unauthorized")


def test_upload_h5ad(brain_upload: dict) -> None:
    data = BRAIN_H5AD.read_bytes()
    assert brain_upload["size"] == len(data)
    assert brain_upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert brain_upload["format"] == "h5ad" and brain_upload["filename"] == "brain.h5ad"


def test_upload_spaceranger_archives(api: str, tenant_a: dict[str, str]) -> None:
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, spaceranger_targz(), "../../etc/passwd")
        assert r.status_code == 201, r.text
        assert r.json()["format"] == "tar.gz"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("outs/filtered_feature_bc_matrix.h5", b"x")
            z.writestr("outs/spatial/tissue_positions.csv", b"x")
        assert upload(c, buf.getvalue(), "s.zip").json()["format"] == "zip"


def test_upload_refusals(api: str, tenant_a: dict[str, str], service_env: dict[str, str]) -> None:
    with client(api, tenant_a["auth"]) as c:
        is_problem(upload(c, b"just some text\n" * 10, "x.h5ad"), 415, "unsupported_format")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("notes.txt", "hello")
        is_problem(upload(c, buf.getvalue(), "x.zip"), 422, "not_spaceranger")
        is_problem(upload(c, b"", "x"), 422, "empty_upload")
        h5 = (ROOT.parent / "shared" / "data" / "pbmc_10x_v3_subset.h5").read_bytes()
        is_problem(upload(c, h5, "m.h5"), 415, "unsupported_format")
        limit = int(service_env["MGS_MAX_UPLOAD_BYTES"])
        is_problem(upload(c, b"\0" * (limit + 1), "big.h5ad"), 413, "upload_too_large")

        def chunks():  # no Content-Length: the limit is enforced while streaming
            for _ in range(limit // (1 << 20) + 2):
                yield b"\0" * (1 << 20)

        r = c.post(
            "/v1/uploads", content=chunks(), headers={"content-type": "application/octet-stream"}
        )
        is_problem(r, 413, "upload_too_large")


def test_upload_archive_bomb_refused(api: str, tenant_a: dict[str, str]) -> None:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("outs/filtered_feature_bc_matrix.h5")
        info.size = 30 * 1024 * 1024  # over MGS_MAX_EXTRACT_BYTES (20 MiB) once unpacked
        t.addfile(info, io.BytesIO(b"\0" * info.size))
    assert len(buf.getvalue()) < 1024 * 1024
    with client(api, tenant_a["auth"]) as c:
        is_problem(upload(c, buf.getvalue(), "bomb.tar.gz"), 422, "archive_too_large")


def test_hostile_hdf5_does_not_take_the_api_down(api: str, tenant_a: dict[str, str]) -> None:
    data = bytearray(BRAIN_H5AD.read_bytes())
    data[64:4096] = b"\xff" * (4096 - 64)  # superblock fine, object headers garbage
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, bytes(data), "bad.h5ad")
        assert r.status_code in (415, 422), r.text
        assert r.json()["code"] in {"corrupt_file", "unsupported_format"}
        assert c.get("/healthz").status_code == 200


def test_submit_get_idempotency(api: str, tenant_a: dict[str, str], brain_upload: dict) -> None:
    body = {
        "upload_id": brain_upload["id"],
        "external_sample_id": "S-1",
        "options": {"resolution": 0.8, "seed": 3},
    }
    key = str(uuid.uuid4())
    with client(api, tenant_a["auth"]) as c:
        r1 = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        assert r1.status_code == 202, r1.text
        job = r1.json()
        assert job["state"] == "queued" and job["stage"] == "validating" and job["progress"] == 0
        assert (
            job["options"]["resolution"] == 0.8 and job["links"]["self"] == f"/v1/jobs/{job['id']}"
        )
        r2 = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        assert r2.status_code == 202 and r2.json()["id"] == job["id"]
        r3 = c.post(
            "/v1/jobs", json={**body, "external_sample_id": "S-2"}, headers={"Idempotency-Key": key}
        )
        is_problem(r3, 409, "idempotency_conflict")
        got = c.get(f"/v1/jobs/{job['id']}").json()
        assert got["id"] == job["id"] and got["attempts"] == 0


def test_submit_validation(api: str, tenant_a: dict[str, str], brain_upload: dict) -> None:
    with client(api, tenant_a["auth"]) as c:
        r = c.post("/v1/jobs", json={"upload_id": "nope"})
        is_problem(r, 422, "validation_error")
        assert r.json()["errors"][0]["loc"] == ["body", "upload_id"]
        is_problem(
            c.post(
                "/v1/jobs", json={"upload_id": brain_upload["id"], "options": {"resolution": -1}}
            ),
            422,
            "validation_error",
        )
        is_problem(
            c.post("/v1/jobs", json={"upload_id": brain_upload["id"], "options": {"bogus": 1}}),
            422,
            "validation_error",
        )
        # what a worker would refuse is refused at the door (one options model, issue 12)
        for bad in (
            {"resolution": 5},
            {"prompt_strategy": "no_such_strategy"},
            {"markers": "a\u0000b"},
            {"n_domains": 1},
            {"tiles": 99},
        ):
            r = c.post("/v1/jobs", json={"upload_id": brain_upload["id"], "options": bad})
            is_problem(r, 422, "validation_error")
            assert r.json()["errors"][0]["loc"][:2] == ["body", "options"], bad
        is_problem(
            c.post(
                "/v1/jobs",
                json={"upload_id": brain_upload["id"], "options": {"markers": "no_such_table"}},
            ),
            422,
            "invalid_option",
        )
        is_problem(
            c.post("/v1/jobs", json={"upload_id": str(uuid.uuid4())}), 404, "upload_not_found"
        )
        is_problem(
            c.post("/v1/jobs", json={"upload_id": brain_upload["id"], "callback_url": "ftp://x/y"}),
            422,
            "callback_url_refused",
        )
        is_problem(c.get("/v1/jobs/not-a-uuid"), 422, "validation_error")
        is_problem(c.get("/v1/nothing"), 404, "not_found")


def test_tenant_isolation(
    api: str, tenant_a: dict[str, str], tenant_b: dict[str, str], brain_upload: dict
) -> None:
    with client(api, tenant_a["auth"]) as a, client(api, tenant_b["auth"]) as b:
        job = a.post("/v1/jobs", json={"upload_id": brain_upload["id"]}).json()
        is_problem(b.get(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
        is_problem(b.post(f"/v1/jobs/{job['id']}/cancel"), 404, "job_not_found")
        is_problem(b.get(f"/v1/jobs/{job['id']}/artifacts"), 404, "job_not_found")
        is_problem(
            b.post("/v1/jobs", json={"upload_id": brain_upload["id"]}), 404, "upload_not_found"
        )
        assert all(j["id"] != job["id"] for j in b.get("/v1/jobs").json()["items"])


def test_list_filters_and_cursor(api: str, tenant_a: dict[str, str], brain_upload: dict) -> None:
    sample = f"LIST-{uuid.uuid4().hex[:6]}"
    with client(api, tenant_a["auth"]) as c:
        ids = [
            c.post(
                "/v1/jobs", json={"upload_id": brain_upload["id"], "external_sample_id": sample}
            ).json()["id"]
            for _ in range(5)
        ]
        seen: list[str] = []
        cursor = None
        while True:
            params = {
                "external_sample_id": sample,
                "limit": 2,
                **({"cursor": cursor} if cursor else {}),
            }
            page = c.get("/v1/jobs", params=params).json()
            seen += [j["id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == list(reversed(ids))
        assert (
            c.get("/v1/jobs", params={"external_sample_id": sample, "state": "succeeded"}).json()[
                "items"
            ]
            == []
        )
        first = c.get(f"/v1/jobs/{ids[0]}").json()
        after = c.get(
            "/v1/jobs", params={"external_sample_id": sample, "created_after": first["created_at"]}
        ).json()
        assert len(after["items"]) == 5
        is_problem(c.get("/v1/jobs", params={"cursor": "garbage"}), 422, "invalid_cursor")


def test_cancel_queued_and_results_not_ready(
    api: str, tenant_a: dict[str, str], brain_upload: dict
) -> None:
    with client(api, tenant_a["auth"]) as c:
        job = c.post("/v1/jobs", json={"upload_id": brain_upload["id"]}).json()
        is_problem(c.get(f"/v1/jobs/{job['id']}/report"), 409, "job_not_succeeded")
        r = c.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "canceled"
        assert r.json()["error"]["code"] == "canceled"
        assert c.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "canceled"
        is_problem(c.get(f"/v1/jobs/{job['id']}/artifacts"), 409, "job_not_succeeded")


def test_openapi_has_operation_ids_and_error_schemas(api: str) -> None:
    with client(api, None) as c:
        spec = c.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("operationId"), (method, path)
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/v1"):
                    assert "application/problem+json" in resp["content"], (method, path, status)


def test_service_commands_on_the_main_entry_point() -> None:
    """`medgemma-spatial serve|worker|relay|db|keys` are reachable through the cli package."""
    out = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for cmd in ("serve", "worker", "relay", "db", "keys"):
        assert cmd in out
    r = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--host" in r.stdout and "--port" in r.stdout


def test_outages_answer_503_with_retry_after_and_recover(
    service_env: dict[str, str], tenant_a: dict[str, str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """An API whose Postgres and object storage sit behind loopback proxies: a refused or
    hanging dependency gives 503 problem+json naming it (with Retry-After), never 500;
    /readyz names the one down or slow; the first request after the database is back
    succeeds (dead pooled connections are pre-pinged away)."""
    from sqlalchemy.engine import make_url

    from tests.service.conftest import start_api
    from tests.service.proxy import TcpProxy

    pg_port = make_url(service_env["MGS_DATABASE_URL"]).port
    s3_port = int(service_env["MGS_S3_ENDPOINT_URL"].rsplit(":", 1)[1])
    db, s3 = TcpProxy(pg_port), TcpProxy(s3_port)
    url = make_url(service_env["MGS_DATABASE_URL"]).set(port=db.port)
    env = {
        **service_env,
        "MGS_DATABASE_URL": url.render_as_string(hide_password=False),
        "MGS_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
        "MGS_S3_MAX_ATTEMPTS": "1",
        "MGS_S3_READ_TIMEOUT_S": "5",
        "MGS_DB_CONNECT_TIMEOUT_S": "2",
    }
    proc, base = start_api(env, tmp_path / "api.log")
    try:
        with client(base, tenant_a["auth"]) as c:
            assert c.get("/readyz").status_code == 200
            assert c.get("/v1/jobs").status_code == 200
            data = BRAIN_H5AD.read_bytes()

            s3.refuse()
            r = upload(c, data)
            is_problem(r, 503, "storage_unavailable")
            assert int(r.headers["retry-after"]) >= 1
            ready = c.get("/readyz")
            is_problem(ready, 503, "not_ready")  # problem+json like every other error
            assert int(ready.headers["retry-after"]) >= 1 and "storage" in ready.json()["detail"]
            assert ready.json()["checks"]["storage"].startswith("error")
            assert ready.json()["checks"]["database"] == "ok"

            s3.hang()
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["storage"].startswith("slow")
            s3.restore()
            assert upload(c, data).status_code == 201

            db.refuse()
            for r in (c.get("/v1/jobs"), c.post("/v1/jobs", json={"upload_id": str(uuid.uuid4())})):
                is_problem(r, 503, "database_unavailable")
                assert int(r.headers["retry-after"]) >= 1
            assert c.get("/readyz").json()["checks"]["database"].startswith("error")

            db.restore()
            # the database goes away while an upload streams in: 503, and the object it
            # had already put in storage is removed again
            from core.storage import open_store
            from tests.service.conftest import settings_from
            from tests.service.helpers import tenant_of

            store = open_store(settings_from(service_env))
            mine = f"uploads/{tenant_of(tenant_a['key'], service_env)}"
            before = set(store.list(mine))

            def body():  # type: ignore[no-untyped-def]
                yield data[: len(data) // 2]
                time.sleep(2)  # the API has authenticated the request and is receiving it
                db.refuse()
                yield data[len(data) // 2 :]

            r = c.post(
                "/v1/uploads",
                params={"filename": "x.h5ad"},
                content=body(),
                headers={"content-type": "application/octet-stream"},
            )
            is_problem(r, 503, "database_unavailable")
            assert set(store.list(mine)) == before, (before, store.list(mine))

            db.restore()  # the pool still holds connections the outage cut
            assert c.get("/v1/jobs").status_code == 200
            assert c.get("/readyz").status_code == 200
        assert "Traceback" not in proc.tail(100_000)
    finally:
        proc.stop()
        db.close()
        s3.close()


def test_api_killed_mid_upload_leaves_no_temp_file(
    service_env: dict[str, str], tenant_a: dict[str, str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL the API while an upload streams in: its temp file stays behind until the
    next API start, which removes it."""
    import signal
    import threading
    import time

    import httpx

    from tests.service.conftest import start_api

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**service_env, "TMPDIR": str(tmpdir)}
    proc, base = start_api(env, tmp_path / "api1.log")
    release = threading.Event()

    def body():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"\0" * (1 << 20)
        release.wait(30)  # the upload stalls here until the API is gone
        yield b"\0"

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{base}/v1/uploads",
                params={"filename": "big.h5ad"},
                content=body(),
                headers={"Authorization": tenant_a["auth"]},
                timeout=60,
            )

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not any(
            p.stat().st_size > 0 for p in tmpdir.glob("mgs-upload-*")
        ):
            time.sleep(0.1)
        left = list(tmpdir.glob("mgs-upload-*"))
        assert left and left[0].name.startswith(f"mgs-upload-{proc.p.pid}-")
        proc.p.send_signal(signal.SIGKILL)
        proc.p.wait(10)
    finally:
        release.set()
        proc.stop()
    t.join(10)
    assert all(p.exists() for p in left)  # nobody removed it: the process was killed
    proc2, _ = start_api(env, tmp_path / "api2.log")
    try:
        assert list(tmpdir.glob("mgs-upload-*")) == []
    finally:
        proc2.stop()
