"""Fixtures for the service tests: a fresh Postgres database, a Redis db, a moto S3 server,
and the API / worker / relay as real subprocesses. No mocks of any of them."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")
pytest.importorskip("celery", reason="the service extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN = os.environ.get("MGS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("MGS_TEST_REDIS", "redis://127.0.0.1:6379")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    here = str(Path(__file__).parent)
    missing = [
        n for n, p in (("Postgres", 5432), ("Redis", 6379)) if not _reachable("127.0.0.1", p)
    ]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.service)
            if missing:
                item.add_marker(
                    pytest.mark.skip(reason=f"{' and '.join(missing)} not reachable on 127.0.0.1")
                )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of its own (created, migrated with Alembic, dropped)."""
    import psycopg

    name = f"mgs_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from core.db.migrate import upgrade

    upgrade(url)
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    import redis

    # MGS_TEST_REDIS_DB pins the db (parallel test runs on one machine each take their own)
    db = int(os.environ.get("MGS_TEST_REDIS_DB") or random.randint(5, 15))
    url = f"{REDIS_BASE}/{db}"
    r = redis.Redis.from_url(url)
    r.flushdb()
    yield url
    r.flushdb()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """moto's standalone S3 server on a loopback port; boto3 talks HTTP to it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(creds)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    bucket = f"mgs-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield {"endpoint": endpoint, "bucket": bucket, **creds}
    server.stop()


@pytest.fixture(scope="session")
def service_env(
    pg_url: str, redis_url: str, s3_server: dict[str, str], tmp_path_factory: Any
) -> dict[str, str]:
    """Environment of every service process of this test session (S3 storage on moto)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGS_")}
    env.update(
        {
            "MGS_DATABASE_URL": pg_url,
            "MGS_BROKER_URL": redis_url,
            "MGS_STORAGE_URL": f"s3://{s3_server['bucket']}/svc",
            "MGS_S3_ENDPOINT_URL": s3_server["endpoint"],
            "MGS_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
            "MGS_WEBHOOK_ALLOW_PRIVATE": "true",
            "MGS_WORKER_IMPORTS": "tests.service.sleep_job",  # the test-only sleep job kind
            "MGS_RELAY_INTERVAL_S": "0.2",
            "MGS_AUTH_CACHE_S": "0",
            "MGS_MAX_EXTRACT_BYTES": str(20 * 1024 * 1024),
            "MGS_MEMORY_BUDGET_MB": "2048",
            "AWS_ACCESS_KEY_ID": s3_server["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": s3_server["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": s3_server["AWS_DEFAULT_REGION"],
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def settings_from(env: dict[str, str]) -> Any:
    from core.config import Settings

    return Settings(**{k[4:].lower(): v for k, v in env.items() if k.startswith("MGS_")})


class Proc:
    """A service subprocess with its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.fh = open(log, "wb")  # noqa: SIM115 (closed in stop())
        self.p = subprocess.Popen(args, env=env, cwd=ROOT, stdout=self.fh, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.fh.close()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def start_api(env: dict[str, str], log: Path) -> tuple[Proc, str]:
    import httpx

    port = free_port()
    proc = Proc(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--log-level", "warning"],
        env,
        log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.p.poll() is not None:
            raise RuntimeError(f"API exited: {proc.tail()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.stop()
    raise RuntimeError(f"API did not start: {proc.tail()}")


def start_worker(
    env: dict[str, str], log: Path, queues: str = "analysis", **overrides: str
) -> Proc:
    wenv = {**env, **overrides}
    args = [
        sys.executable,
        "-m",
        "cli",
        "worker",
        "--queues",
        queues,
        "--pool",
        "solo",
        "--loglevel",
        "warning",
    ]
    return Proc(args, wenv, log)


def start_relay(env: dict[str, str], log: Path, **overrides: str) -> Proc:
    return Proc([sys.executable, "-m", "cli", "relay"], {**env, **overrides}, log)


@pytest.fixture(scope="session")
def api(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[str]:
    proc, base = start_api(service_env, tmp_path_factory.mktemp("logs") / "api.log")
    yield base
    proc.stop()


def make_key(env: dict[str, str], tenant: str, role: str = "submitter") -> tuple[str, str]:
    """(api key, webhook secret) through the real CLI."""
    out = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "create", "--tenant", tenant, "--role", role],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    return fields["api_key"], fields["webhook_secret"]


@pytest.fixture(scope="session")
def tenant_a(service_env: dict[str, str]) -> dict[str, str]:
    key, secret = make_key(service_env, f"labA-{uuid.uuid4().hex[:6]}")
    return {"key": key, "secret": secret, "auth": f"Bearer {key}"}


@pytest.fixture(scope="session")
def tenant_b(service_env: dict[str, str]) -> dict[str, str]:
    key, secret = make_key(service_env, f"labB-{uuid.uuid4().hex[:6]}")
    return {"key": key, "secret": secret, "auth": f"Bearer {key}"}


class WebhookSink:
    """A loopback HTTP server that records the webhooks it receives."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if sink.fail_first > 0:
                    sink.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                sink.received.append(
                    {"headers": dict(self.headers.items()), "body": body, "path": self.path}
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.received) < n:
            time.sleep(0.1)
        return self.received

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink()
    yield s
    s.close()


def wait_state(client: Any, job_id: str, states: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.time() + timeout
    job: dict[str, Any] = {}
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job.get("state") in states:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not reach {states}: {job}")
