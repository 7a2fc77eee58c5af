"""Issue 18 item 3: one client must not stall every tenant's reports.

The report backends and models a job may ask for are an operator allowlist
(``MGS_REPORT_BACKENDS_ALLOWED``, ``MGS_REPORT_MODELS_ALLOWED``); anything else is refused at
submit with a 422 problem+json. Workers never download model weights unless
``MGS_MODEL_ALLOW_DOWNLOAD=true``: a model that is not local fails the job at once with
``model_unavailable`` instead of retrying downloads on the shared report worker.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import start_api, start_relay, start_worker
from tests.service.helpers import BRAIN_H5AD, VISIUM_DIR, client, spaceranger_targz, upload

NOT_LOCAL = "some-org/not-a-local-model"


def _problem(r: Any, code: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert r.json()["code"] == code, r.text


def test_backends_and_models_outside_the_allowlist_are_refused(
    api: str, tenant_a: dict[str, str]
) -> None:
    """The default deployment (template backend) allows template only, and its configured models."""
    with client(api, tenant_a["auth"]) as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
        sid = f"allowlist-{uuid.uuid4().hex[:8]}"
        for backend in ("transformers", "openai"):
            body = {"upload_id": up, "external_sample_id": sid, "options": {"backend": backend}}
            r = c.post("/v1/jobs", json=body)
            _problem(r, "backend_not_allowed")
            assert "MGS_REPORT_BACKENDS_ALLOWED" in r.json()["detail"]
        body = {"upload_id": up, "external_sample_id": sid, "options": {"model": NOT_LOCAL}}
        r = c.post("/v1/jobs", json=body)
        _problem(r, "model_not_allowed")
        assert NOT_LOCAL not in r.json()["detail"]  # the refused value is not echoed
        # nothing was queued for the refused requests; allowed ones still go through
        assert c.get("/v1/jobs", params={"external_sample_id": sid}).json()["items"] == []
        r = c.post("/v1/jobs", json={"upload_id": up, "options": {"backend": "template"}})
        assert r.status_code == 202, r.text


def test_check_is_shared_by_submit_and_report_worker() -> None:
    from core.config import Settings
    from core.errors import BadOption
    from core.jobs.service import check_report_choice

    s = Settings(report_backends_allowed="template, openai", report_models_allowed="m1,m2")
    check_report_choice({"backend": "openai", "model": "m2"}, s)
    check_report_choice({}, s)
    with pytest.raises(BadOption) as e:
        check_report_choice({"backend": "transformers"}, s)
    assert e.value.code == "backend_not_allowed"
    with pytest.raises(BadOption) as e:
        check_report_choice({"model": "m3"}, s)
    assert e.value.code == "model_not_allowed"
    # defaults: template and the configured backend; the configured models
    d = Settings(report_backend="openai", openai_model="served")
    check_report_choice({"backend": "template"}, d)
    check_report_choice({"backend": "openai", "model": "served"}, d)
    with pytest.raises(BadOption):
        check_report_choice({"backend": "transformers"}, d)


def test_a_model_that_is_not_local_fails_at_once_without_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("transformers")
    from core.errors import ModelUnavailable
    from core.report.backends.hf import load_model

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("the model loader tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)  # (with downloads on: ~150 s of retries)
    with pytest.raises(ModelUnavailable) as e:
        load_model(NOT_LOCAL, None, allow_download=False)
    assert "MGS_MODEL_ALLOW_DOWNLOAD" in e.value.detail


@pytest.fixture(scope="module")
def wide(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[str]:
    """A second API and workers whose operator allowed the transformers backend and a hub model
    that this machine does not have (downloads left off, the default)."""
    logs = tmp_path_factory.mktemp("allow-logs")
    env = {
        **service_env,
        "MGS_REPORT_BACKEND": "template",
        "MGS_REPORT_BACKENDS_ALLOWED": "template,transformers",
        "MGS_REPORT_MODELS_ALLOWED": NOT_LOCAL,
        "HF_HOME": str(logs / "hf-empty"),
    }
    env.pop("MGS_MODEL_ALLOW_DOWNLOAD", None)
    api_proc, base = start_api(env, logs / "api.log")
    procs = [
        api_proc,
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis"),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield base
    for p in procs:
        p.stop()


@pytest.mark.skipif(not VISIUM_DIR.is_dir(), reason="../shared/data is absent")
def test_allowed_model_that_is_not_local_fails_the_job_with_a_clear_error(
    wide: str, tenant_a: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    with client(wide, tenant_a["auth"]) as c:
        up = upload(c, spaceranger_targz(), "v.tar.gz").json()["id"]
        r = c.post(
            "/v1/jobs",
            json={"upload_id": up, "options": {"backend": "transformers", "model": NOT_LOCAL}},
        )
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        deadline = time.time() + 240  # a bound for a busy machine, not a timing assertion
        job: dict[str, Any] = {}
        while time.time() < deadline:
            job = c.get(f"/v1/jobs/{jid}").json()
            if job["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.5)
    assert job["state"] == "failed", job
    assert job["error"]["code"] == "model_unavailable", job
    assert "MGS_MODEL_ALLOW_DOWNLOAD" in job["error"]["detail"], job
