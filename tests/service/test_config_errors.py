"""The service walkthrough's failure modes: a missing database or an unreachable broker is a
configuration error (one line, exit 3; 503 ``database_unavailable`` from a running API), and
a callback URL whose host does not resolve is refused at submit instead of holding it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.service.conftest import PG_ADMIN, ROOT, make_key, start_api
from tests.service.helpers import BRAIN_H5AD, client, upload


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_database_is_a_configuration_error(service_env: dict[str, str]) -> None:
    env = {
        **service_env,
        "MGS_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/nodb_{uuid.uuid4().hex[:6]}",
    }
    for args in (
        ["db", "upgrade"],
        ["keys", "create", "--tenant", "LAB"],
        ["relay", "--once"],
        ["serve", "--port", "1"],
    ):
        r = _cli(env, *args)
        assert r.returncode == 3, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database_unavailable:"), lines
        assert "createdb nodb_" in lines[0] and "internal" not in lines[0]


def test_unreachable_broker_is_a_configuration_error(service_env: dict[str, str]) -> None:
    env = {**service_env, "MGS_BROKER_URL": "redis://127.0.0.1:1/0"}
    for args in (["worker", "--queues", "analysis", "--pool", "solo"], ["relay", "--once"]):
        r = _cli(env, *args)
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.strip().startswith("error: broker_unavailable:"), r.stderr
        assert "MGS_BROKER_URL" in r.stderr


@pytest.fixture
def own_db(service_env: dict[str, str]) -> Any:
    name = f"mgs_cfg_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    env = {
        **service_env,
        "MGS_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
        "MGS_WEBHOOK_ALLOW_PRIVATE": "false",
    }
    assert _cli(env, "db", "upgrade").returncode == 0
    yield name, env
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unresolvable_callback_and_database_gone(own_db: Any, tmp_path: Path) -> None:
    name, env = own_db
    key, _ = make_key(env, "walkthrough")
    proc, base = start_api(env, tmp_path / "api.log")
    try:
        with client(base, f"Bearer {key}") as c:
            up = upload(c, BRAIN_H5AD.read_bytes()).json()
            r = c.post(
                "/v1/jobs",
                json={"upload_id": up["id"], "callback_url": "https://lims.invalid/hooks/mgs"},
            )
            assert r.status_code == 422 and r.json()["code"] == "callback_url_refused", r.text
            assert c.post("/v1/jobs", json={"upload_id": up["id"]}).status_code == 202
            with psycopg.connect(PG_ADMIN, autocommit=True) as a:
                a.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            for _ in range(2):  # the pooled connection that died, then a fresh one that fails
                r = c.get("/v1/jobs")
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "database_unavailable"
                assert r.headers["content-type"] == "application/problem+json"
    finally:
        proc.stop()
