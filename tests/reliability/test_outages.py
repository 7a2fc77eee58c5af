"""Dependency outages for real (issue 20): a Postgres of the suite's own (initdb/pg_ctl on a
spare port), its own redis-server, moto S3 behind a loopback proxy that refuses or hangs.

Each case runs 4 two-stage test jobs (analysis then report, ``tests/service/sleep_job.py``)
on 2 solo workers (one per queue) with default settings, makes one dependency go away, and
asserts: every job succeeded within 60 s of the dependency's return, the API never answered
500, each job's storage holds only its committed attempts (no duplicate, no leftover).

``MGS_TEST_OUTAGES=1 pytest tests/reliability/test_outages.py`` (outages of 15 s, about
6 minutes); ``--long``: 60 s outages. Figures go to ``var/outage-results.jsonl``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import RedisServer, free_port, kill_tree
from tests.service.conftest import (
    Proc,
    make_key,
    settings_from,
    start_api,
    start_relay,
    start_worker,
)
from tests.service.helpers import BRAIN_H5AD, client, submit_test_job, tenant_of, upload
from tests.service.proxy import TcpProxy

pytestmark = [
    pytest.mark.outages,
    pytest.mark.skipif(
        os.environ.get("MGS_TEST_OUTAGES") != "1",
        reason="about 6 minutes: run with MGS_TEST_OUTAGES=1 (make test-outages)",
    ),
]
BOUND_S = 60  # every job terminal within this long after the dependency returns
RESULTS: list[dict[str, Any]] = []


def _have_postgres_tools() -> bool:
    return all(shutil.which(t) for t in ("initdb", "pg_ctl", "runuser"))


if not _have_postgres_tools():  # pragma: no cover
    pytest.skip("initdb/pg_ctl/runuser not available", allow_module_level=True)


class OwnPostgres:
    """A throwaway cluster run as the ``postgres`` user on a spare loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        shutil.chown(root, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "test")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def _pg(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            cwd=self.root,
        )

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


class PersistentRedis(RedisServer):
    """Redis as deployed: append-only file on, so a restart keeps the queued messages."""

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
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="module")
def stack(
    s3_server: dict[str, str], tmp_path_factory: Any, long_run: bool
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("outages")
    pg = OwnPostgres(Path(f"/tmp/mgs-pg-{uuid.uuid4().hex[:8]}"))
    redis = PersistentRedis(root)
    s3 = TcpProxy(int(s3_server["endpoint"].rsplit(":", 1)[1]))
    from core.db.migrate import upgrade

    upgrade(pg.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGS_")}
    env.update(
        {
            "MGS_DATABASE_URL": pg.url,
            "MGS_BROKER_URL": redis.url,
            "MGS_STORAGE_URL": f"s3://{s3_server['bucket']}/outages",
            "MGS_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
            "MGS_WORKER_IMPORTS": "tests.service.sleep_job",
            "MGS_AUTH_CACHE_S": "0",
            "AWS_ACCESS_KEY_ID": s3_server["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": s3_server["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": s3_server["AWS_DEFAULT_REGION"],
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
    )
    key, _ = make_key(env, f"out-{uuid.uuid4().hex[:6]}")
    api_proc, base = start_api(env, root / "api.log")
    relay = start_relay(env, root / "relay.log")
    procs: dict[str, Proc] = {
        "analysis": start_worker(env, root / "wa.log", queues="analysis"),
        "report": start_worker(env, root / "wr.log", queues="report"),
    }
    with client(base, f"Bearer {key}") as c:
        up = str(upload(c, BRAIN_H5AD.read_bytes()).json()["id"])
    st = {
        "pg": pg,
        "redis": redis,
        "s3": s3,
        "env": env,
        "base": base,
        "auth": f"Bearer {key}",
        "tenant": tenant_of(key, env),
        "up": up,
        "workers": procs,
        "root": root,
        "outage_s": 60 if long_run else 15,
    }
    try:
        yield st
    finally:
        for p in [api_proc, relay, *procs.values()]:
            p.stop()
        s3.close()
        redis.stop()
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(pg.root, ignore_errors=True)
        _write_results()


class Poller:
    """Polls every job over the API the whole time and counts the statuses it gets."""

    def __init__(self, base: str, auth: str, ids: list[str]) -> None:
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, args=(base, auth, ids), daemon=True)
        self.t.start()

    def _run(self, base: str, auth: str, ids: list[str]) -> None:
        import httpx

        with client(base, auth) as c:
            c.timeout = httpx.Timeout(10)
            while not self.stop.is_set():
                for i in ids:
                    try:
                        code = c.get(f"/v1/jobs/{i}").status_code
                    except httpx.HTTPError:
                        code = 0
                    self.statuses[code] = self.statuses.get(code, 0) + 1
                self.stop.wait(0.5)

    def close(self) -> dict[int, int]:
        self.stop.set()
        self.t.join(15)
        return self.statuses


def _rows(st: dict[str, Any], ids: list[str]) -> dict[str, dict[str, Any]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(st["pg"].url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT id::text, state, error_code, attempts, analysis_prefix, report_prefix "
                    "FROM jobs WHERE id::text = ANY(:ids)"
                ),
                {"ids": ids},
            ).mappings()
            return {r["id"]: dict(r) for r in rows}
    finally:
        engine.dispose()


def _wait_done(st: dict[str, Any], ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.time() + timeout
    rows: dict[str, dict[str, Any]] = {}
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            rows = _rows(st, ids)
            if len(rows) == len(ids) and all(
                r["state"] in ("succeeded", "failed", "canceled") for r in rows.values()
            ):
                return rows
        time.sleep(0.5)
    return rows


def _run_case(
    st: dict[str, Any],
    name: str,
    outage: Any,
    restore: Any,
    down_s: float | None = None,
    when: Any = None,
) -> None:
    ids = [
        submit_test_job(st["env"], st["tenant"], st["up"], {"sleep_s": 2, "two_stage": True})
        for _ in range(4)
    ]
    poller = Poller(st["base"], st["auth"], ids)
    t0 = time.time()
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (when or _started)(st, ids):
            time.sleep(0.2)
        outage()
        down_s = st["outage_s"] if down_s is None else down_s
        time.sleep(down_s)
        restore()
        back = time.time()
        rows = _wait_done(st, ids, BOUND_S)
        done = time.time()
    finally:
        statuses = poller.close()
    tails = {k: p.tail(4000) for k, p in st["workers"].items()}
    states = {i: (r["state"], r["error_code"]) for i, r in rows.items()}
    assert all(s == ("succeeded", None) for s in states.values()) and len(states) == 4, (
        name,
        states,
        tails,
    )
    assert 500 not in statuses, (name, statuses)
    from core.storage import open_store

    store = open_store(settings_from(st["env"]))
    for i, r in rows.items():
        keys = store.list(f"jobs/{i}")
        prefixes = {k.rsplit("/", 1)[0] for k in keys}
        assert prefixes <= {r["analysis_prefix"], r["report_prefix"]}, (name, i, prefixes, r)
        assert len(keys) == len(set(keys))
    RESULTS.append(
        {
            "case": name,
            "down_s": down_s,
            "terminal_after_return_s": round(done - back, 1),
            "total_s": round(done - t0, 1),
            "max_attempts": max(r["attempts"] for r in rows.values()),
            "api_statuses": {str(k): v for k, v in sorted(statuses.items())},
        }
    )


def _started(st: dict[str, Any], ids: list[str]) -> bool:
    return any(r["state"] == "running" for r in _rows(st, ids).values())


def _reporting(st: dict[str, Any], ids: list[str]) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(st["pg"].url)
    try:
        with engine.connect() as c:
            n = c.execute(
                text(
                    "SELECT count(*) FROM jobs WHERE id::text = ANY(:ids) "
                    "AND state = 'running' AND stage = 'reporting'"
                ),
                {"ids": ids},
            ).scalar_one()
    finally:
        engine.dispose()
    return bool(n)


def _write_results() -> None:
    import json

    if not RESULTS:
        return
    out = Path(__file__).resolve().parents[2] / "var" / "outage-results.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as fh:
        for r in RESULTS:
            fh.write(json.dumps(r) + "\n")


def test_postgres_restart(stack: dict[str, Any]) -> None:
    pg = stack["pg"]
    _run_case(stack, "postgres restart", pg.stop, pg.start, down_s=1.0)


def test_postgres_down(stack: dict[str, Any]) -> None:
    pg = stack["pg"]
    _run_case(stack, "postgres down", pg.stop, pg.start)


def test_storage_refuses(stack: dict[str, Any]) -> None:
    s3 = stack["s3"]
    _run_case(stack, "storage refuses", s3.refuse, s3.restore)


def test_storage_hangs(stack: dict[str, Any]) -> None:
    s3 = stack["s3"]
    _run_case(stack, "storage hangs", s3.hang, s3.restore)


def test_redis_restart(stack: dict[str, Any]) -> None:
    redis = stack["redis"]
    _run_case(stack, "redis restart", redis.stop, redis.start)


def test_report_worker_sigkill(stack: dict[str, Any]) -> None:
    workers = stack["workers"]

    def kill() -> None:
        kill_tree(workers["report"].p, signal.SIGKILL)
        workers["report"].p.wait(10)

    def restart() -> None:
        workers["report"].stop()
        workers["report"] = start_worker(
            stack["env"], stack["root"] / f"wr-{uuid.uuid4().hex[:4]}.log", queues="report"
        )

    _run_case(stack, "report worker SIGKILL", kill, restart, down_s=0.0, when=_reporting)
