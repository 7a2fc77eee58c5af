"""Item 7: one lab never sees another's data. Every route and method of the committed
OpenAPI spec is called with tenant B's key on tenant A's objects (404), with no key, a
malformed key and a revoked key (401); the database holds no API key in plaintext."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.service.conftest import ROOT, make_key
from tests.service.helpers import BRAIN_H5AD, client, upload

PROBLEM = "application/problem+json"
SPEC = json.loads((ROOT / "openapi.json").read_text())
V1_OPS = [
    (method.upper(), path)
    for path, ops in SPEC["paths"].items()
    if path.startswith("/v1")
    for method in ops
]


def _fill(path: str, job_id: str) -> str:
    return path.replace("{job_id}", job_id).replace("{name}", "report.json")


def _call(c: Any, method: str, path: str, upload_id: str) -> Any:
    if path == "/v1/uploads":
        return c.post(
            "/v1/uploads", content=b"x", headers={"content-type": "application/octet-stream"}
        )
    if method == "POST" and path == "/v1/jobs":
        return c.post("/v1/jobs", json={"upload_id": upload_id})
    if method == "POST" and path.endswith("/report/sign"):
        return c.post(path, json={"reviewer": "Dr B", "status": "final"})
    return c.request(method, path)


@pytest.fixture(scope="module")
def a_objects(api: str, tenant_a: dict[str, str]) -> dict[str, str]:
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, BRAIN_H5AD.read_bytes(), "brain.h5ad")
        assert r.status_code == 201, r.text
        up = r.json()["id"]
        queued = c.post("/v1/jobs", json={"upload_id": up}).json()["id"]
        canceled = c.post("/v1/jobs", json={"upload_id": up}).json()["id"]
        assert c.post(f"/v1/jobs/{canceled}/cancel").status_code == 200
    return {"upload": up, "queued": queued, "canceled": canceled}


def test_matrix_covers_every_v1_operation() -> None:
    assert {p for _, p in V1_OPS} >= {
        "/v1/uploads",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/report",
        "/v1/jobs/{job_id}/artifacts",
        "/v1/jobs/{job_id}/artifacts/{name}",
    }
    assert len(V1_OPS) >= 8


@pytest.mark.parametrize("which", ["queued", "canceled"])
@pytest.mark.parametrize("method,path", [op for op in V1_OPS if "{job_id}" in op[1]])
def test_other_tenant_gets_404(
    api: str,
    tenant_b: dict[str, str],
    a_objects: dict[str, str],
    method: str,
    path: str,
    which: str,
) -> None:
    with client(api, tenant_b["auth"]) as b:
        r = _call(b, method, _fill(path, a_objects[which]), a_objects["upload"])
    assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "job_not_found"
    assert a_objects["upload"] not in r.text


def test_other_tenant_cannot_use_upload_or_list(
    api: str, tenant_a: dict[str, str], tenant_b: dict[str, str], a_objects: dict[str, str]
) -> None:
    with client(api, tenant_b["auth"]) as b:
        r = b.post("/v1/jobs", json={"upload_id": a_objects["upload"]})
        assert r.status_code == 404 and r.json()["code"] == "upload_not_found", r.text
        listed = b.get("/v1/jobs", params={"limit": 200}).json()["items"]
        assert not {j["id"] for j in listed} & {a_objects["queued"], a_objects["canceled"]}
        # a cursor forged from A's job does not reveal it either
        import base64

        forged = base64.urlsafe_b64encode(
            f"2999-01-01T00:00:00+00:00|{a_objects['queued']}".encode()
        )
        listed = b.get("/v1/jobs", params={"cursor": forged.decode()}).json()["items"]
        assert all(j["id"] not in a_objects.values() for j in listed)
    with client(api, tenant_a["auth"]) as a:  # A still sees its own job untouched
        assert a.get(f"/v1/jobs/{a_objects['queued']}").json()["state"] == "queued"


@pytest.fixture(scope="module")
def revoked_key(service_env: dict[str, str], api: str) -> str:
    key, _ = make_key(service_env, f"lab-rev-{uuid.uuid4().hex[:6]}")
    with client(api, f"Bearer {key}") as c:
        assert c.get("/v1/jobs").status_code == 200
    subprocess.run(
        [sys.executable, "-m", "cli", "keys", "revoke", key],
        env=service_env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return key


@pytest.mark.parametrize("cred", ["none", "revoked", "garbage", "basic", "empty_bearer"])
@pytest.mark.parametrize("method,path", V1_OPS)
def test_no_or_revoked_key_gets_401(
    api: str, a_objects: dict[str, str], revoked_key: str, cred: str, method: str, path: str
) -> None:
    auth = {
        "none": None,
        "revoked": f"Bearer {revoked_key}",
        "garbage": "Bearer mgs_deadbeef_" + "A" * 43,
        "basic": "Basic dXNlcjpwYXNz",
        "empty_bearer": "Bearer",
    }[cred]
    with client(api, auth) as c:
        r = _call(c, method, _fill(path, a_objects["queued"]), a_objects["upload"])
    assert r.status_code == 401, (cred, method, path, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_database_holds_no_key_in_plaintext(
    service_env: dict[str, str],
    tenant_a: dict[str, str],
    tenant_b: dict[str, str],
    revoked_key: str,
) -> None:
    import psycopg

    url = service_env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    keys = [tenant_a["key"], tenant_b["key"], revoked_key]
    secrets = [k.split("_", 2)[2] for k in keys]  # the random part alone
    hits: list[str] = []
    with psycopg.connect(url) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'json', 'jsonb', 'bytea', 'character')"
        ).fetchall()
        assert cols
        for table, col in cols:
            for s in secrets:
                n = conn.execute(
                    f'SELECT count(*) FROM "{table}" WHERE position(%s in "{col}"::text) > 0', (s,)
                ).fetchone()
                if n and n[0]:
                    hits.append(f"{table}.{col}")
        # what is stored is a hash of the key
        import hashlib

        stored = {r[0] for r in conn.execute("SELECT key_hash FROM api_keys").fetchall()}
        assert {hashlib.sha256(k.encode()).hexdigest() for k in keys} <= stored
    assert hits == [], f"API key material stored in plaintext in {hits}"
