"""Job lifecycle: outbox, relay, claim, leases, fencing, retries, cancel, webhooks.

Uses the TEST-ONLY 'test_sleep' job kind (tests/service/sleep_job.py, loaded through MGS_WORKER_IMPORTS) so the
plumbing is tested apart from the science; the real analysis runs in test_e2e.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.enums import Phase
from core.jobs import webhooks
from core.jobs.errors import CallbackRefused, LeaseLost
from tests.service.conftest import WebhookSink, settings_from, start_relay, start_worker, wait_state
from tests.service.helpers import BRAIN_H5AD, client, submit_test_job, tenant_of, upload


@pytest.fixture(scope="module")
def relay(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    p = start_relay(service_env, tmp_path_factory.mktemp("logs") / "relay.log")
    yield p
    p.stop()


@pytest.fixture(scope="module")
def worker(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    p = start_worker(service_env, tmp_path_factory.mktemp("logs") / "worker.log")
    yield p
    p.stop()


@pytest.fixture(scope="module")
def up(api: str, tenant_a: dict[str, str]) -> str:
    with client(api, tenant_a["auth"]) as c:
        return str(upload(c, BRAIN_H5AD.read_bytes()).json()["id"])


@pytest.fixture(scope="module")
def tenant(tenant_a: dict[str, str], service_env: dict[str, str]) -> str:
    return tenant_of(tenant_a["key"], service_env)


def check_signature(secret: str, hook: dict[str, Any]) -> None:
    h = {k.lower(): v for k, v in hook["headers"].items()}
    assert h["webhook-id"].startswith("msg_")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + hook["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert h["webhook-signature"] == f"v1,{expected}"
    assert webhooks.verify(secret, h, hook["body"])
    assert not webhooks.verify(secret, h, hook["body"] + b" ")


def test_success_progress_artifacts_webhook(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
    sink: WebhookSink,
) -> None:
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 1.0}, sink.url)
    with client(api, tenant_a["auth"]) as c:
        seen = set()
        deadline = time.time() + 60
        while time.time() < deadline:
            j = c.get(f"/v1/jobs/{job_id}").json()
            seen.add((j["state"], j["stage"]))
            if j["state"] == "succeeded":
                break
            time.sleep(0.1)
        assert j["state"] == "succeeded", (j, worker.tail())
        assert ("running", "analyzing") in seen
        assert j["progress"] == 1.0 and j["attempts"] == 1 and j["finished_at"]
        arts = c.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]
        assert [a["name"] for a in arts] == ["sleep.json"]
        body = c.get(arts[0]["url"]).json()
        assert body["attempt"] == 1
    hooks = sink.wait(1)
    assert len(hooks) == 1
    event = json.loads(hooks[0]["body"])
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id
    check_signature(tenant_a["secret"], hooks[0])


def test_failure_stores_code_and_sends_webhook(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
    sink: WebhookSink,
) -> None:
    job_id = submit_test_job(
        service_env, tenant, up, {"sleep_s": 0.1, "fail_code": "empty_after_qc"}, sink.url
    )
    with client(api, tenant_a["auth"]) as c:
        j = wait_state(c, job_id, {"failed", "succeeded"}, 60)
    assert j["state"] == "failed" and j["error"]["code"] == "empty_after_qc"
    ev = json.loads(sink.wait(1)[0]["body"])
    assert ev["type"] == "job.failed" and ev["data"]["error"]["code"] == "empty_after_qc"


def test_cancel_running_job_frees_worker(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
    sink: WebhookSink,
) -> None:
    slow = submit_test_job(service_env, tenant, up, {"sleep_s": 300}, sink.url)
    with client(api, tenant_a["auth"]) as c:
        wait_state(c, slow, {"running"}, 60)
        assert c.post(f"/v1/jobs/{slow}/cancel").json()["state"] == "canceled"
        quick = submit_test_job(service_env, tenant, up, {"sleep_s": 0.1})
        assert wait_state(c, quick, {"succeeded"}, 30)["state"] == "succeeded"
        # one solo worker: the quick job could only run because the canceled one (600 s) let go
        j = c.get(f"/v1/jobs/{slow}").json()
        assert j["state"] == "canceled"
        from core.storage import open_store
        from tests.service.conftest import settings_from as _s

        assert open_store(_s(service_env)).list(f"jobs/{slow}") == []
    assert json.loads(sink.wait(1)[0]["body"])["type"] == "job.canceled"


def test_webhook_retried_with_backoff(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
) -> None:
    sink = WebhookSink(fail_first=2)
    try:
        job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.1}, sink.url)
        hooks = sink.wait(1, timeout=60)
        assert len(hooks) == 1 and json.loads(hooks[0]["body"])["data"]["id"] == job_id
        assert sink.fail_first == 0
    finally:
        sink.close()


def test_crashed_worker_lease_expires_and_job_is_retried(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
    tmp_path: Any,
) -> None:
    """A worker that dies mid-job: the lease expires, the reconciler sends the job back,
    the next attempt succeeds and writes under attempt-2/."""
    worker.stop()  # only the workers below may take this job (the module's worker is done)
    short = {"MGS_JOB_LEASE_S": "2"}
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.5, "crash": 1})
    w1 = start_worker(service_env, tmp_path / "w1.log", **short)
    try:
        w1.p.wait(60)
        assert w1.p.returncode == 17, w1.tail()
    finally:
        w1.stop()
    w2 = start_worker(service_env, tmp_path / "w2.log", **short)
    try:
        with client(api, tenant_a["auth"]) as c:
            j = wait_state(c, job_id, {"succeeded", "failed"}, 90)
            assert j["state"] == "succeeded", (j, w2.tail())
            assert j["attempts"] == 2
            names = [a["name"] for a in c.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]]
            assert names == ["sleep.json"]
            assert c.get(f"/v1/jobs/{job_id}/artifacts/sleep.json").json()["attempt"] == 2
    finally:
        w2.stop()


def test_reconciler_resends_a_job_the_broker_lost(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    worker: Any,
    redis_url: str,
    tmp_path: Any,
) -> None:
    """The relay published the job, then Redis lost the message: the reconciler sends it again."""
    import redis
    from sqlalchemy import create_engine, text

    worker.stop()  # nobody consumes while the message is lost
    job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 0.1})
    engine = create_engine(service_env["MGS_DATABASE_URL"])
    q = text(
        "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FROM outbox WHERE job_id = :j AND kind = 'task'"
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with engine.connect() as conn:
                sent, total = conn.execute(q, {"j": job_id}).one()
            if sent == 1:
                break
            time.sleep(0.1)
        assert sent == 1
        redis.Redis.from_url(redis_url).flushdb()  # the broker loses the message
        r2 = start_relay(service_env, tmp_path / "relay2.log", MGS_JOB_REQUEUE_AFTER_S="1")
        w = start_worker(service_env, tmp_path / "w.log")
        try:
            with client(api, tenant_a["auth"]) as c:
                j = wait_state(c, job_id, {"succeeded", "failed"}, 90)
            assert j["state"] == "succeeded", (j, w.tail(), r2.tail())
            assert j["attempts"] == 1
            with engine.connect() as conn:
                sent, total = conn.execute(q, {"j": job_id}).one()
            assert total >= 2  # the original message and the re-send
        finally:
            w.stop()
            r2.stop()
    finally:
        engine.dispose()


def test_concurrent_submits_with_one_idempotency_key(
    api: str, tenant_a: dict[str, str], up: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = str(uuid.uuid4())
    body = {"upload_id": up, "external_sample_id": "RACE"}

    def submit(_: int) -> tuple[int, str]:
        with client(api, tenant_a["auth"]) as c:
            r = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
            return r.status_code, r.json().get("id", "")

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(submit, range(8)))
    assert {s for s, _ in results} == {202}
    assert len({i for _, i in results}) == 1


# ---- use cases in-process against the real database ------------------------------------


@pytest.fixture
def sessions(service_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from core.db.session import make_sync_engine, make_sync_sessionmaker

    engine = make_sync_engine(service_env["MGS_DATABASE_URL"])
    yield make_sync_sessionmaker(engine)
    engine.dispose()


def _expire(sessions: Any, job_id: uuid.UUID) -> None:
    from core.db.models import Job

    with sessions() as s, s.begin():
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_fencing_and_attempts_exhausted(
    sessions: Any, service_env: dict[str, str], tenant: str, up: str
) -> None:
    from core.db.models import Job, OutboxMessage
    from core.jobs import lifecycle, outbox

    settings = settings_from(service_env).model_copy(update={"job_max_attempts": 2})
    job_id = uuid.UUID(submit_test_job(service_env, tenant, up, {}, None, job_max_attempts=2))
    with sessions() as s, s.begin():
        j1 = lifecycle.claim(s, job_id, Phase.ANALYSIS, "w1", settings)
        assert j1 is not None and j1.attempts == 1
    with sessions() as s, s.begin():  # a duplicate delivery does nothing
        assert lifecycle.claim(s, job_id, Phase.ANALYSIS, "w2", settings) is None
    _expire(sessions, job_id)
    with sessions() as s, s.begin():
        assert outbox.reconcile(s, settings)["requeued"] >= 1
    with sessions() as s, s.begin():
        j2 = lifecycle.claim(s, job_id, Phase.ANALYSIS, "w2", settings)
        assert j2 is not None and j2.attempts == 2
    # attempt 1 is stale: every write it tries is refused
    with sessions() as s, s.begin(), pytest.raises(LeaseLost):
        lifecycle.heartbeat(s, job_id, 1, "analyzing", 0.5, settings)
    with sessions() as s, s.begin(), pytest.raises(LeaseLost):
        lifecycle.succeed(s, job_id, 1, timings={}, analysis_prefix=f"jobs/{job_id}/attempt-1")
    with sessions() as s, s.begin():
        assert lifecycle.fail(s, job_id, 1, "x", "y") is None
    with sessions() as s, s.begin():
        lifecycle.heartbeat(s, job_id, 2, "analyzing", 0.5, settings)
    _expire(sessions, job_id)
    with sessions() as s, s.begin():
        assert outbox.reconcile(s, settings)["exhausted"] >= 1
    with sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert (
            job.state == "failed" and job.error_code == "attempts_exhausted" and job.attempts == 2
        )
        kinds = (
            s.execute(select(OutboxMessage.kind).where(OutboxMessage.job_id == job_id))
            .scalars()
            .all()
        )
        assert kinds.count("task") == 2  # submit + one resend


def test_callback_url_guard() -> None:
    for url in [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://192.168.0.1/",
        "ftp://example.com/",
        "http://user:pw@example.com/",
    ]:
        with pytest.raises(CallbackRefused):
            webhooks.check_callback_url(url, allow_private=False)
    webhooks.check_callback_url("http://127.0.0.1:9/x", allow_private=True)
    webhooks.check_callback_url(
        "https://93.184.215.14/hook", allow_private=False
    )  # a public address literal


def test_migrations_match_models(service_env: dict[str, str]) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from core.db.models import Base

    engine = create_engine(service_env["MGS_DATABASE_URL"])
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


# ---- one state machine: transitions, outages, dead workers ----------------------------------


def _job(sessions: Any, job_id: uuid.UUID) -> Any:
    from core.db.models import Job

    with sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def _tasks(sessions: Any, job_id: uuid.UUID) -> int:
    from core.db.models import OutboxMessage

    with sessions() as s:
        return len(
            s.execute(
                select(OutboxMessage.id).where(
                    OutboxMessage.job_id == job_id, OutboxMessage.kind == "task"
                )
            ).all()
        )


def test_transitions_release_transient_hand_back_reclaim(
    sessions: Any, service_env: dict[str, str], tenant: str, up: str
) -> None:
    """Each way back to ``queued`` goes through lifecycle: an unexpected error uses an
    attempt, an outage and a hand-back do not, an outage repeated past
    MGS_TRANSIENT_MAX_TRIES fails the job with dependency_unavailable."""
    from core.jobs import lifecycle

    settings = settings_from(service_env).model_copy(update={"transient_max_tries": 2})
    job_id = uuid.UUID(submit_test_job(service_env, tenant, up, {}, None))

    def claim() -> int:
        with sessions() as s, s.begin():
            j = lifecycle.claim(s, job_id, Phase.ANALYSIS, "w", settings)
            assert j is not None
            return int(j.attempts)

    a1 = claim()
    with sessions() as s, s.begin():
        assert lifecycle.release(s, job_id, a1, "RuntimeError: boom", settings) is not None
    j = _job(sessions, job_id)
    assert (j.state, j.stage, j.stage_attempts, j.lease_owner) == ("queued", "validating", 1, None)
    with sessions() as s, s.begin():  # a stale attempt's release is refused
        assert lifecycle.release(s, job_id, a1, "again", settings) is None

    a2 = claim()
    with sessions() as s, s.begin():
        assert lifecycle.hand_back(s, job_id, a2) is not None
    assert _job(sessions, job_id).stage_attempts == 1  # the hand-back used no attempt

    for n in (1, 2):
        a = claim()
        with sessions() as s, s.begin():
            assert lifecycle.requeue_transient(s, job_id, a, "OperationalError", settings)
        j = _job(sessions, job_id)
        assert (j.state, j.stage_attempts, j.transient_tries) == ("queued", 1, n)
    a = claim()
    with sessions() as s, s.begin():
        lifecycle.requeue_transient(s, job_id, a, "OperationalError: down", settings)
    j = _job(sessions, job_id)
    assert (j.state, j.error_code) == ("failed", "dependency_unavailable")
    assert j.attempts == 5 and _tasks(sessions, job_id) == 5  # submit + 4 requeues


def test_reconciler_reclaims_a_silent_workers_report_stage(
    sessions: Any, service_env: dict[str, str], tenant: str, up: str
) -> None:
    """A running job (report stage) whose holder's heartbeat is older than
    MGS_WORKER_DEAD_AFTER_S goes back to the queue long before its lease expires; the dead
    attempt stays fenced. Right after a database outage heartbeats are not judged."""
    from core.db import repositories as repo
    from core.db.models import Job, Worker
    from core.jobs import lifecycle, outbox

    settings = settings_from(service_env).model_copy(update={"worker_dead_after_s": 5})
    job_id = uuid.UUID(submit_test_job(service_env, tenant, up, {}, None))
    ghost, alive = f"ghost-{uuid.uuid4().hex[:6]}:1", f"alive-{uuid.uuid4().hex[:6]}:2"
    with sessions() as s, s.begin():
        s.execute(repo.worker_heartbeat(ghost, "report"))
        s.execute(repo.worker_heartbeat(alive, "report"))
        s.execute(
            update(Worker)
            .where(Worker.id == ghost)
            .values(last_seen=datetime.now(UTC) - timedelta(seconds=60))
        )
        s.execute(update(Job).where(Job.id == job_id).values(stage="reporting"))
    with sessions() as s, s.begin():
        j = lifecycle.claim(s, job_id, Phase.REPORT, ghost, settings)
        assert j is not None and j.lease_expires_at is not None
        attempt = j.attempts
    with sessions() as s, s.begin():  # just after an outage: silence says nothing
        assert outbox.reconcile(s, settings, check_heartbeats=False)["dead_worker"] == 0
    assert _job(sessions, job_id).state == "running"
    with sessions() as s, s.begin():
        counts = outbox.reconcile(s, settings)
    assert counts["dead_worker"] >= 1
    j = _job(sessions, job_id)
    assert (j.state, j.stage, j.lease_owner) == ("queued", "reporting", None)
    with sessions() as s, s.begin():
        j2 = lifecycle.claim(s, job_id, Phase.REPORT, alive, settings)
        assert j2 is not None and j2.attempts == attempt + 1
    with sessions() as s, s.begin(), pytest.raises(LeaseLost):  # the dead attempt is fenced
        lifecycle.succeed(s, job_id, attempt, timings={}, report_prefix="x")
    with sessions() as s, s.begin():  # a live holder is left alone
        outbox.reconcile(s, settings)
    assert _job(sessions, job_id).lease_owner == alive


def _proxied_sessions(service_env: dict[str, str], proxy: Any) -> Any:
    from sqlalchemy.engine import make_url

    from core.db.session import make_sync_engine, make_sync_sessionmaker

    url = make_url(service_env["MGS_DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    engine = make_sync_engine(url.render_as_string(hide_password=False), connect_timeout_s=2)
    return engine, make_sync_sessionmaker(engine)


def test_release_waits_for_the_database_and_cleanup_never_blocks_it(
    sessions: Any, service_env: dict[str, str], tenant: str, up: str, tmp_path: Any
) -> None:
    """A stage fails while Postgres is unreachable (the worker's connections go through a
    proxy that refuses): the release is retried until the database answers again, then
    the attempt's objects are deleted; a store that cannot delete never stops the release."""
    import contextlib
    import threading

    from core.jobs.execute import run_stage
    from core.storage import S3Store, open_store
    from tests.service.conftest import free_port
    from tests.service.proxy import TcpProxy

    settings = settings_from(service_env).model_copy(update={"release_retry_s": 60})
    pg_port = int(service_env["MGS_DATABASE_URL"].rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(pg_port)
    engine, psessions = _proxied_sessions(service_env, proxy)

    @contextlib.contextmanager
    def tx():  # type: ignore[no-untyped-def]
        with psessions() as s, s.begin():
            yield s

    store = open_store(settings)
    dead_store = S3Store("nobucket", "", f"http://127.0.0.1:{free_port()}", max_attempts=1)
    try:
        # 1. Postgres goes away mid-stage; back 2 s later
        job_id = uuid.UUID(submit_test_job(service_env, tenant, up, {}, None))

        def body(st: Any) -> str:
            (st.tmp / "a.txt").write_text("partial")
            store.put_file(f"{st.prefix}/a.txt", st.tmp / "a.txt")
            proxy.refuse()
            threading.Timer(2.0, proxy.restore).start()
            raise RuntimeError("the stage broke while the database was down")

        assert run_stage(tx, store, settings, job_id, "w1", Phase.ANALYSIS, body) == "stopped"
        j = _job(sessions, job_id)
        assert (j.state, j.stage_attempts, j.lease_owner) == ("queued", 1, None)
        # the stored detail names the error type only (the message may carry internals; logged)
        assert "RuntimeError" in (j.error_detail or "") and "the stage broke" not in j.error_detail
        assert store.list(f"jobs/{job_id}") == []  # cleaned up, after the release

        # 2. the delete fails (storage unreachable): the job is released all the same
        def body2(st: Any) -> str:
            raise RuntimeError("second failure")

        assert run_stage(tx, dead_store, settings, job_id, "w1", Phase.ANALYSIS, body2) == "stopped"
        j = _job(sessions, job_id)
        assert (j.state, j.stage_attempts) == ("queued", 2)

        # 3. storage unreachable inside the stage: an outage, requeued without an attempt
        def body3(st: Any) -> str:
            dead_store.get_file("uploads/x", st.tmp / "x")
            return "unreachable"

        assert run_stage(tx, store, settings, job_id, "w1", Phase.ANALYSIS, body3) == "stopped"
        j = _job(sessions, job_id)
        assert (j.state, j.stage_attempts, j.transient_tries) == ("queued", 2, 1)
        assert "EndpointConnectionError" in (j.error_detail or "")
    finally:
        proxy.close()
        engine.dispose()


def test_dead_worker_is_reclaimed_and_claims_wait_for_the_database(
    api: str,
    tenant_a: dict[str, str],
    tenant: str,
    up: str,
    service_env: dict[str, str],
    relay: Any,
    tmp_path: Any,
) -> None:
    """A worker killed -9 mid-job (default 900 s lease): its heartbeat stops and the
    reconciler hands the job to the next worker. A worker whose database is unreachable
    when the task arrives retries the claim with backoff instead of dropping the task."""
    import signal

    from sqlalchemy.engine import make_url

    from tests.reliability.conftest import kill_tree
    from tests.service.proxy import TcpProxy

    fast = {"MGS_WORKER_HEARTBEAT_S": "0.5", "MGS_WORKER_DEAD_AFTER_S": "4"}
    r2 = start_relay(service_env, tmp_path / "relay.log", MGS_RECONCILE_INTERVAL_S="0.5", **fast)
    w1 = start_worker(service_env, tmp_path / "w1.log", **fast)
    w2 = None
    try:
        job_id = submit_test_job(service_env, tenant, up, {"sleep_s": 20})
        with client(api, tenant_a["auth"]) as c:
            try:
                wait_state(c, job_id, {"running"}, 120)
            except AssertionError as e:
                raise AssertionError((str(e), w1.tail(), r2.tail())) from e
            kill_tree(w1.p, signal.SIGKILL)
            w1.p.wait(10)
            w2 = start_worker(service_env, tmp_path / "w2.log", **fast)
            wait_state(c, job_id, {"running"}, 5)  # still held by the dead worker
            j = wait_state(c, job_id, {"succeeded", "failed"}, 120)
            assert j["state"] == "succeeded" and j["attempts"] == 2, (j, w2.tail(), r2.tail())
            assert "reconciled" in r2.tail() and "'dead_worker': 1" in r2.tail()
            assert c.get(f"/v1/jobs/{job_id}/artifacts/sleep.json").json()["attempt"] == 2
        w2.stop()
        w2 = None

        # the next worker reaches Postgres through a proxy; it starts with the database there
        # (a worker that cannot reach it at start is a configuration error: exit 3), then the
        # proxy refuses (live connections cut) before the task arrives
        pg_port = int(service_env["MGS_DATABASE_URL"].rsplit(":", 1)[1].split("/")[0])
        proxy = TcpProxy(pg_port)
        try:
            url = make_url(service_env["MGS_DATABASE_URL"]).set(port=proxy.port)
            w2 = start_worker(
                service_env,
                tmp_path / "w3.log",
                MGS_DATABASE_URL=url.render_as_string(hide_password=False),
                MGS_DB_CONNECT_TIMEOUT_S="2",
                **fast,
            )
            log = tmp_path / "w3.log"
            deadline = time.time() + 90
            while time.time() < deadline and "[queues]" not in log.read_text(errors="replace"):
                time.sleep(0.2)
            assert "[queues]" in log.read_text(errors="replace"), w2.tail()
            time.sleep(3.0)  # past its start-up check and first heartbeats
            proxy.refuse()
            job2 = submit_test_job(service_env, tenant, up, {"sleep_s": 0.2})
            deadline = time.time() + 60
            while time.time() < deadline and "retry in" not in log.read_text(errors="replace"):
                time.sleep(0.2)
            assert "retry in" in log.read_text(errors="replace"), w2.tail()
            proxy.restore()
            with client(api, tenant_a["auth"]) as c:
                j = wait_state(c, job2, {"succeeded", "failed"}, 90)
            assert j["state"] == "succeeded" and j["attempts"] == 1, (j, w2.tail())
        finally:
            proxy.close()
    finally:
        for p in (w1, w2, r2):
            if p is not None:
                p.stop()
