"""The API the lab console leans on: the job list's filters (report status, state, sample
id, dates), both sort orders and keyset paging over thousands of jobs; ``report_status`` on
every job and in its ETag; the overlay endpoint (tenant-scoped) drawn from real analysis
artifacts of a seeded synthetic sample."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.service.helpers import client, upload

N_JOBS = 2500


def _pg(env: dict[str, str]) -> Any:
    import psycopg

    return psycopg.connect(env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql"))


@pytest.fixture(scope="module")
def lab(api: str, service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """A fresh lab with N_JOBS jobs in it (rows written straight into Postgres: the submit
    path is tested elsewhere; this is about reading many). Its queued and running rows are
    canceled afterwards: to the session's relay and workers they are real jobs."""
    from core.synth import write_sample
    from tests.service.conftest import make_key

    small = tmp_path_factory.mktemp("lab") / "small.h5ad"
    write_sample(small, n_spots=60, n_genes=200, seed=1)
    tenant = f"console-{uuid.uuid4().hex[:8]}"
    key, _ = make_key(service_env, tenant)
    with client(api, f"Bearer {key}") as c:
        up = upload(c, small.read_bytes(), "small.h5ad")
        assert up.status_code == 201, up.text
        upload_id = up.json()["id"]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    states = ["queued", "running", "succeeded", "succeeded", "failed"]
    rows = []
    for i in range(N_JOBS):
        state = states[i % len(states)]
        signed = None
        if state == "succeeded":
            signed = (None, "final", "amended")[(i // 5) % 3]
        # every tenth job shares its created_at with the next: the keyset's id tiebreak
        created = t0 + timedelta(minutes=i - (i % 10 == 1))
        rows.append(
            (uuid.uuid4(), tenant, uuid.UUID(upload_id), f"S-{i:05d}", state, signed, created)
        )
    _insert(service_env, rows)
    yield {"auth": f"Bearer {key}", "rows": rows, "tenant": tenant, "env": service_env}
    with _pg(service_env) as conn:
        conn.execute(
            "UPDATE jobs SET state = 'canceled', finished_at = now(), updated_at = now()"
            " WHERE tenant_id = %s AND state IN ('queued', 'running')",
            (tenant,),
        )


def _insert(env: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
    with _pg(env) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO jobs (id, tenant_id, upload_id, kind, external_sample_id, options, state,"
            " stage, progress, attempts, stage_attempts, max_attempts, transient_tries, timings,"
            " summary, report_status, created_at, updated_at) VALUES (%s, %s, %s, 'spatial', %s,"
            " '{}', %s, 'validating', 0, 0, 0, 3, 0, '{}', '{}', %s, %s, now())",
            # updated now: the reconciler re-sends queued jobs untouched for minutes, and
            # these rows must not become work for the session's one analysis worker
            rows,
        )


def _all_pages(c: Any, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        r = c.get("/v1/jobs", params=q)
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _expected_status(state: str, signed: str | None) -> str | None:
    return signed or ("preliminary" if state == "succeeded" else None)


def test_keyset_paging_holds_over_thousands_of_jobs(api: str, lab: dict[str, Any]) -> None:
    rows = lab["rows"]
    newest = sorted(rows, key=lambda r: (r[6], r[0]), reverse=True)
    with client(api, lab["auth"]) as c:
        got = _all_pages(c)
        assert [j["id"] for j in got] == [str(r[0]) for r in newest]
        oldest = _all_pages(c, sort="created_at")
        assert [j["id"] for j in oldest] == [str(r[0]) for r in reversed(newest)]
        # a page holds while new jobs arrive: the cursor is a position, not an offset
        first = c.get("/v1/jobs", params={"limit": 100}).json()
        new = (
            uuid.uuid4(),
            lab["tenant"],
            rows[0][2],
            "S-NEW",
            "queued",
            None,
            datetime(2030, 1, 1, tzinfo=UTC),
        )
        _insert(lab["env"], [new])
        rows.append(new)
        second = c.get("/v1/jobs", params={"limit": 100, "cursor": first["next_cursor"]}).json()
        assert [j["id"] for j in second["items"]] == [str(r[0]) for r in newest[100:200]]
        for j, r in zip(got, newest, strict=True):
            assert j["report_status"] == _expected_status(r[4], r[5])


@pytest.mark.parametrize("status", ["preliminary", "final", "amended"])
def test_filter_by_report_status(api: str, lab: dict[str, Any], status: str) -> None:
    want = {str(r[0]) for r in lab["rows"] if _expected_status(r[4], r[5]) == status}
    assert want
    with client(api, lab["auth"]) as c:
        got = _all_pages(c, report_status=status)
    assert {j["id"] for j in got} == want
    assert all(j["report_status"] == status for j in got)


def test_filters_combine_state_dates_and_sample_id(api: str, lab: dict[str, Any]) -> None:
    rows = lab["rows"]
    after, before = rows[100][6], rows[700][6]
    want = [
        str(r[0])
        for r in sorted(rows, key=lambda r: (r[6], r[0]))
        if r[4] == "failed" and after <= r[6] < before
    ]
    with client(api, lab["auth"]) as c:
        got = _all_pages(
            c,
            state="failed",
            sort="created_at",
            created_after=after.isoformat(),
            created_before=before.isoformat(),
        )
        assert [j["id"] for j in got] == want
        one = c.get("/v1/jobs", params={"external_sample_id": "S-00042"}).json()["items"]
        assert [j["id"] for j in one] == [str(rows[42][0])]
        bad = c.get("/v1/jobs", params={"report_status": "signed"})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert c.get("/v1/jobs", params={"sort": "state"}).status_code == 422


def test_report_status_changes_the_etag(
    api: str, lab: dict[str, Any], service_env: dict[str, str]
) -> None:
    job = next(r for r in lab["rows"] if r[4] == "succeeded" and r[5] is None)
    with client(api, lab["auth"]) as c:
        r1 = c.get(f"/v1/jobs/{job[0]}")
        assert r1.json()["report_status"] == "preliminary"
        etag = r1.headers["etag"]
        assert c.get(f"/v1/jobs/{job[0]}", headers={"If-None-Match": etag}).status_code == 304
        with _pg(service_env) as conn:
            conn.execute("UPDATE jobs SET report_status = 'final' WHERE id = %s", (job[0],))
        r2 = c.get(f"/v1/jobs/{job[0]}", headers={"If-None-Match": etag})
        assert r2.status_code == 200 and r2.json()["report_status"] == "final"


# ---- overlay ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analysed(
    api: str, service_env: dict[str, str], lab: dict[str, Any], tmp_path_factory: Any
) -> dict[str, Any]:
    """A succeeded job whose analysis artifacts are real: the analysis stage run here on a
    seeded synthetic sample (with an H&E image), stored where a worker stores them."""
    from core.runner import run_analysis_stage
    from core.storage import open_store, upload_dir
    from core.synth import write_sample
    from tests.service.conftest import settings_from

    tmp = tmp_path_factory.mktemp("overlay")
    sample = tmp / "s.h5ad"
    write_sample(sample, n_spots=400, n_genes=1200, seed=5)
    out = tmp / "out"
    run_analysis_stage(sample, out)
    job_id = uuid.uuid4()
    prefix = f"jobs/{job_id}/attempt-1/analysis"
    upload_dir(open_store(settings_from(service_env)), out, prefix)
    upload_id = next(iter(lab["rows"]))[2]
    with _pg(service_env) as conn:
        conn.execute(
            "INSERT INTO jobs (id, tenant_id, upload_id, kind, options, state, stage, progress,"
            " attempts, stage_attempts, max_attempts, transient_tries, timings, summary,"
            " analysis_prefix) VALUES (%s, %s, %s, 'spatial', '{}', 'succeeded', 'reporting', 1,"
            " 2, 1, 3, 0, '{}', '{}', %s)",
            (job_id, lab["tenant"], upload_id, prefix),
        )
    return {"id": str(job_id), "out": out}


def test_overlay_of_a_job(api: str, lab: dict[str, Any], analysed: dict[str, Any]) -> None:
    import csv
    import json

    with client(api, lab["auth"]) as c:
        r = c.get(f"/v1/jobs/{analysed['id']}/overlay")
    assert r.status_code == 200, r.text
    doc = r.json()
    out: Path = analysed["out"]
    analysis = json.loads((out / "analysis.json").read_text())
    spots = list(csv.DictReader((out / "spots.csv").open()))
    scalef = analysis["image"]["scalef"]
    assert doc["schema"] == "mgs.overlay/1"
    assert doc["image"]["artifact"] == "he_image.png" and doc["unit"] == "image_px"
    assert doc["n_spots"] == len(spots) == len(doc["x"]) == len(doc["y"])
    assert doc["x"][7] == pytest.approx(float(spots[7]["x"]) * scalef, abs=0.01)
    # every spot lies on the image the console draws it over
    from PIL import Image

    w, h = Image.open(out / "he_image.png").size
    assert min(doc["x"]) >= 0 and max(doc["x"]) <= w
    assert min(doc["y"]) >= 0 and max(doc["y"]) <= h
    dom = doc["layers"]["domain"]
    assert [dom["categories"][k] for k in dom["codes"]] == [s["domain"] for s in spots]
    lin = doc["layers"]["lineage"]
    assert [lin["categories"][k] for k in lin["codes"]] == [s["lineage"] for s in spots]
    assert doc["layers"]["total_counts"]["values"][3] == float(spots[3]["total_counts"])
    assert {d["id"] for d in doc["domains"]} == set(dom["categories"])
    held = {c["name"]: c["reason"] for c in analysis["claims"] if not c["passed"]}
    assert dom["withheld"] == held.get("domains")
    assert lin["withheld"] == held.get("annotation")
    d1 = next(d for d in doc["domains"] if d["id"] == "D1")
    assert d1["cell_types"] and sum(d1["cell_types"].values()) == pytest.approx(1, abs=0.01)
    assert "lineage_composition" in d1


def test_overlay_is_tenant_scoped_and_needs_a_succeeded_job(
    api: str, lab: dict[str, Any], analysed: dict[str, Any], tenant_b: dict[str, str]
) -> None:
    with client(api, tenant_b["auth"]) as c:
        r = c.get(f"/v1/jobs/{analysed['id']}/overlay")
        assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    queued = next(r for r in lab["rows"] if r[4] == "queued")
    with client(api, lab["auth"]) as c:
        r = c.get(f"/v1/jobs/{queued[0]}/overlay")
        assert r.status_code == 409 and r.json()["code"] == "job_not_succeeded"
        r = c.get(f"/v1/jobs/{queued[0]}/overlay", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


def test_me_names_the_role_and_limits(
    api: str, lab: dict[str, Any], service_env: dict[str, str]
) -> None:
    from tests.service.conftest import make_key

    reviewer, _ = make_key(service_env, lab["tenant"], "reviewer")
    with client(api, lab["auth"]) as c:
        me = c.get("/v1/me").json()
    assert me["tenant_id"] == lab["tenant"] and me["role"] == "submitter"
    assert me["limits"]["max_upload_bytes"] == int(service_env["MGS_MAX_UPLOAD_BYTES"])
    with client(api, f"Bearer {reviewer}") as c:
        assert c.get("/v1/me").json()["role"] == "reviewer"
    with client(api, "Bearer mgs_nope") as c:
        assert c.get("/v1/me").status_code == 401
