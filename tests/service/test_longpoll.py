"""Status without busy polling: ETag / If-None-Match (304) and the long poll ``?wait=N``
(Postgres LISTEN/NOTIFY), on TEST-ONLY 'test_sleep' jobs with a real relay and worker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.service.conftest import start_relay, start_worker
from tests.service.helpers import BRAIN_H5AD, client, submit_test_job, tenant_of, upload


@pytest.fixture(scope="module")
def up(api: str, tenant_a: dict[str, str]) -> str:
    with client(api, tenant_a["auth"]) as c:
        return str(upload(c, BRAIN_H5AD.read_bytes()).json()["id"])


@pytest.fixture(scope="module")
def tenant(tenant_a: dict[str, str], service_env: dict[str, str]) -> str:
    return tenant_of(tenant_a["key"], service_env)


def test_etag_and_304_while_nothing_changes(
    api: str, tenant_a: dict[str, str], tenant: str, up: str, service_env: dict[str, str]
) -> None:
    # no relay or worker runs yet in this module: the job stays queued
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.5})
    with client(api, tenant_a["auth"]) as c:
        r = c.get(f"/v1/jobs/{job_id}")
        etag = r.headers["etag"]
        assert r.status_code == 200 and etag.startswith('"') and r.json()["state"] == "queued"
        r = c.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag})
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
        r = c.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": f'"other", W/{etag}'})
        assert r.status_code == 304
        # a long poll that sees no change ends with 304 after its wait
        r = c.get(f"/v1/jobs/{job_id}", params={"wait": 1}, headers={"If-None-Match": etag})
        assert r.status_code == 304
        # a stale ETag answers at once with the current job
        r = c.get(f"/v1/jobs/{job_id}", params={"wait": 1}, headers={"If-None-Match": '"old"'})
        assert r.status_code == 200 and r.headers["etag"] == etag
        for bad in (-1, 61, "x"):
            r = c.get(f"/v1/jobs/{job_id}", params={"wait": bad})
            assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_waiting_requests_hold_no_database_connection(
    api: str, tenant_a: dict[str, str], tenant: str, up: str, service_env: dict[str, str]
) -> None:
    """More long polls than the API's connection pool (30) wait at once; a plain GET and
    each of them still get their answers."""
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.5})

    async def go() -> tuple[list[int], int]:
        headers = {"Authorization": tenant_a["auth"]}
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=60, limits=limits) as c:
            etag = (await c.get(f"/v1/jobs/{job_id}")).headers["etag"]
            polls = [
                asyncio.create_task(
                    c.get(f"/v1/jobs/{job_id}", params={"wait": 4}, headers={"If-None-Match": etag})
                )
                for _ in range(60)
            ]
            await asyncio.sleep(1.0)
            plain = (await c.get(f"/v1/jobs/{job_id}")).status_code
            return [r.status_code for r in await asyncio.gather(*polls)], plain

    codes, plain = asyncio.run(go())
    assert plain == 200
    assert codes == [304] * 60


def test_status_cache_follows_every_change_of_the_row(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    tenant_b: dict[str, str],
) -> None:
    """Plain GETs are answered from the API's status cache; a change of the job row by
    another process (here: SQL, as a worker's heartbeat would) reaches the next GETs at
    once (the jobs_notify_touched trigger), progress included, which the long poll's
    state/stage notification does not carry."""
    import time

    import psycopg

    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.5})
    url = service_env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with client(api, tenant_a["auth"]) as c:
        for _ in range(3):  # fill the cache (the listener connects on first use)
            first = c.get(f"/v1/jobs/{job_id}")
            time.sleep(0.2)
        assert first.json()["progress"] == 0.0
        for progress in (0.25, 0.5):
            with psycopg.connect(url) as conn:
                conn.execute("UPDATE jobs SET progress = %s WHERE id = %s", (progress, job_id))
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                r = c.get(f"/v1/jobs/{job_id}")
                if r.json()["progress"] == progress:
                    break
                time.sleep(0.02)
            assert r.json()["progress"] == progress, "the cached status was not dropped"
            assert r.headers["etag"] != first.headers["etag"]
            # and it stays current (a stale body was not stored back)
            assert all(c.get(f"/v1/jobs/{job_id}").json()["progress"] == progress for _ in range(5))
        r = c.post(f"/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200
        assert c.get(f"/v1/jobs/{job_id}").json()["state"] == "canceled"  # read-your-writes
    with client(api, tenant_b["auth"]) as other:  # the cache answers only the job's tenant
        assert other.get(f"/v1/jobs/{job_id}").status_code == 404


@pytest.fixture(scope="module")
def pipeline(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("longpoll-logs")
    procs = [
        start_relay(service_env, logs / "relay.log"),
        start_worker(service_env, logs / "worker.log"),
    ]
    yield procs
    for p in procs:
        p.stop()


def test_long_poll_follows_every_state_and_stage_change(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    pipeline: Any,
) -> None:
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 1.0})
    with client(api, tenant_a["auth"]) as c:
        r = c.get(f"/v1/jobs/{job_id}")
        seen = [(r.json()["state"], r.json()["stage"])]
        etag, requests = r.headers["etag"], 1
        while seen[-1][0] not in ("succeeded", "failed", "canceled") and requests < 40:
            r = c.get(f"/v1/jobs/{job_id}", params={"wait": 30}, headers={"If-None-Match": etag})
            requests += 1
            assert r.status_code == 200, (r.status_code, seen, [p.tail() for p in pipeline])
            j = r.json()
            # each answer came because the job changed (a new state or stage, or the job moved
            # on between two requests: a stale ETag), not because the wait ran out
            assert r.headers["etag"] != etag
            etag = r.headers["etag"]
            if (j["state"], j["stage"]) != seen[-1]:
                seen.append((j["state"], j["stage"]))
        assert seen[-1] == ("succeeded", "analyzing"), seen
        assert ("running", "analyzing") in seen
        # a handful of requests for a whole job, not a busy loop
        assert requests <= 12, (requests, seen)
        # a finished job answers a long poll at once (304: the client is up to date)
        r = c.get(
            f"/v1/jobs/{job_id}", params={"wait": 60}, headers={"If-None-Match": etag}, timeout=30
        )
        assert r.status_code == 304
