"""A job whose report prompt the leakage gate refuses, on real services (API, relay, analysis
and report workers, Postgres, Redis, moto S3): as the CLI (exit 4), the analysis stands and
the report is written without a narrative; the job SUCCEEDS and says why the narrative is
missing (job.report, report.json's ``narrative``, the job.succeeded webhook)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.service.conftest import WebhookSink, start_relay, start_worker, wait_state
from tests.service.helpers import client, upload


@pytest.fixture(scope="module")
def hooks() -> Any:
    s = WebhookSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def workers(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("leak-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    plugins = f"{service_env.get('MGS_WORKER_IMPORTS', '')},tests.service.leaky_features"
    procs = [
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis", MGS_WORKER_IMPORTS=plugins),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield procs
    for p in procs:
        p.stop()


def test_refused_prompt_job_succeeds_with_a_report_without_narrative(
    api: str, tenant_a: dict[str, str], workers: Any, hooks: WebhookSink, tmp_path: Any
) -> None:
    from core.synth import write_sample

    path = tmp_path / "synthetic.h5ad"
    write_sample(path, n_spots=500, n_genes=1500, seed=5)
    with client(api, tenant_a["auth"]) as c:
        up = upload(c, path.read_bytes(), "synthetic.h5ad").json()
        job = c.post(
            "/v1/jobs",
            json={
                "upload_id": up["id"],
                "external_sample_id": "LEAK-1",
                "callback_url": hooks.url,
                "options": {"backend": "template", "seed": 0},
            },
        ).json()
        done = wait_state(c, job["id"], {"succeeded", "failed", "canceled"}, timeout=600)
        assert done["state"] == "succeeded", (done, [p.tail() for p in workers])
        assert done["error"] is None
        # what a LIMS reads on the job: no narrative, and why (a stable code)
        assert done["report"]["narrative"] == "withheld"
        assert done["report"]["reason"]["code"] == "prompt_leakage"
        assert "leakage gate refused the prompt" in done["report"]["reason"]["detail"]
        assert done["provenance"]["report"]["leakage_gate"]["passed"] is False

        report = c.get(f"/v1/jobs/{job['id']}/report").json()
        assert report["status"] == "narrative_withheld"
        assert report["narrative"]["status"] == "withheld"
        assert report["narrative"]["code"] == "prompt_leakage"
        assert all(s["narrative"] == "" for s in report["sections"])
        assert report["sections"]  # the computed findings are there
        names = {a["name"] for a in c.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
        # the analysis artifacts and the whole report; no prompt was written or sent
        assert {
            "features.json",
            "analysis.json",
            "spots.csv",
            "report.json",
            "report.md",
            "report.html",
            "leakage_findings.json",
        } <= names
        assert "prompt.txt" not in names
        findings = c.get(f"/v1/jobs/{job['id']}/artifacts/leakage_findings.json").json()
        assert any("colon" in json.dumps(f) for f in findings["findings"])
        md = c.get(f"/v1/jobs/{job['id']}/report", params={"format": "markdown"}).text
        assert "leakage gate refused the prompt" in md
        assert c.get(f"/v1/jobs/{job['id']}/report", params={"format": "fhir"}).status_code == 200

    event = next(json.loads(h["body"]) for h in hooks.wait(1, timeout=60))
    assert event["type"] == "job.succeeded"
    assert event["data"]["report"]["narrative"] == "withheld"
    assert event["data"]["report"]["reason"]["code"] == "prompt_leakage"
