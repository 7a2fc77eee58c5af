"""Fixtures for the reliability suite: the service fixtures of tests/service (a throwaway
Postgres database, moto S3, the API as a subprocess) plus a Redis server of the suite's
own (so a test may FLUSHALL and restart it), and helpers to start and kill workers.

``pytest tests/reliability`` runs bounded counts (CI); ``--long`` runs the bigger ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")
pytest.importorskip("celery", reason="the service extra is not installed")

import contextlib

from tests.service.conftest import (  # noqa: F401  (fixtures re-used as they are)
    api,
    free_port,
    pg_url,
    s3_server,
    service_env,
    sink,
    tenant_a,
)


def pytest_addoption(parser: Any) -> None:
    import contextlib

    with contextlib.suppress(ValueError):  # tests/conftest.py registers it for every folder
        parser.addoption("--long", action="store_true", default=False, help="bigger counts")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    here = str(Path(__file__).parent)
    missing = [n for n, p in (("Postgres", 5432),) if not _reachable(p)]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.service)
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"{' and '.join(missing)} not available"))


@pytest.fixture(scope="session")
def long_run(request: Any) -> bool:
    return bool(request.config.getoption("--long"))


class RedisServer:
    """A redis-server of this suite's own on a loopback port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.p: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.p = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if _reachable(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self.p = None

    def flushall_and_restart(self, down_s: float = 2.0) -> None:
        """Lose everything: FLUSHALL, kill the server, start an empty one on the same port."""
        import redis

        redis.Redis.from_url(self.url).flushall()
        self.stop()
        time.sleep(down_s)
        self.start()


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory: Any) -> Iterator[RedisServer]:
    r = RedisServer(tmp_path_factory.mktemp("redis"))
    yield r
    r.stop()


@pytest.fixture(scope="session")
def redis_url(own_redis: RedisServer) -> str:
    """Overrides tests/service's: every service process of this suite uses our own server."""
    return own_redis.url


def kill_tree(p: subprocess.Popen[Any], sig: int = signal.SIGKILL) -> None:
    for c in children(p.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(c, sig)
    with contextlib.suppress(ProcessLookupError):
        p.send_signal(sig)


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def unique() -> str:
    return uuid.uuid4().hex[:8]
