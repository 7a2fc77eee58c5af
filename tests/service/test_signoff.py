"""Pathologist sign-off and lab exports, on a real job: API + relay + analysis and report
workers (template backend) on a small seeded synthetic sample; then roles, sign-off,
history, webhooks, the status in every rendering, FHIR (validated with fhir.resources)
and HL7 v2.5.1 (parsed with python-hl7)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from tests.service.conftest import (
    ROOT,
    WebhookSink,
    make_key,
    start_relay,
    start_worker,
    wait_state,
)
from tests.service.helpers import client, tenant_of, upload

fhir_dr = pytest.importorskip("fhir.resources.R4B.diagnosticreport")
hl7 = pytest.importorskip("hl7")
pypdf = pytest.importorskip("pypdf")


@pytest.fixture(scope="module")
def hooks() -> Any:
    s = WebhookSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def workers(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("signoff-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    procs = [
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis"),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def keys(service_env: dict[str, str], tenant_a: dict[str, str], tenant_b: dict[str, str]) -> Any:
    lab_a = tenant_of(tenant_a["key"], service_env)
    lab_b = tenant_of(tenant_b["key"], service_env)
    reviewer_a, _ = make_key(service_env, lab_a, "reviewer")
    reviewer_b, _ = make_key(service_env, lab_b, "reviewer")
    return {
        "submitter": tenant_a["auth"],
        "reviewer": f"Bearer {reviewer_a}",
        "other_lab_reviewer": f"Bearer {reviewer_b}",
    }


@pytest.fixture(scope="module")
def done_job(
    api: str, keys: dict[str, str], workers: Any, hooks: WebhookSink, tmp_path_factory: Any
) -> dict[str, Any]:
    from core.synth import write_sample

    path = tmp_path_factory.mktemp("sample") / "synthetic.h5ad"
    write_sample(path, n_spots=500, n_genes=1500, seed=3)
    with client(api, keys["submitter"]) as c:
        up = upload(c, path.read_bytes(), "synthetic.h5ad").json()
        job = c.post(
            "/v1/jobs",
            json={
                "upload_id": up["id"],
                "external_sample_id": "S-2026-0042",
                "callback_url": hooks.url,
                "options": {"backend": "template", "seed": 0},
            },
        ).json()
        done = wait_state(c, job["id"], {"succeeded", "failed", "canceled"}, timeout=600)
    assert done["state"] == "succeeded", (done, [p.tail() for p in workers])
    return done


def _sign(c: Any, job_id: str, **body: Any) -> Any:
    return c.post(f"/v1/jobs/{job_id}/report/sign", json=body)


def _pdf_text(c: Any, job_id: str) -> str:
    """The served report.pdf's text (pypdf), whitespace squashed."""
    r = c.get(f"/v1/jobs/{job_id}/report", params={"format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:200]
    reader = pypdf.PdfReader(io.BytesIO(r.content))
    return " ".join(" ".join(p.extract_text() or "" for p in reader.pages).split())


def _hl7_status(c: Any, job_id: str) -> tuple[Any, str]:
    r = c.get(f"/v1/jobs/{job_id}/report", params={"format": "hl7"})
    assert r.status_code == 200, r.text
    msg = hl7.parse(r.text)
    obx = [s for s in msg if str(s[0]) == "OBX"]
    flags = {str(s[11]) for s in obx}
    status = str(msg.segment("OBR")[25])
    assert flags == {status}, (flags, status)  # OBX-11 of every result = OBR-25
    return msg, status


def test_keys_create_refuses_an_unknown_role(service_env: dict[str, str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "create", "--tenant", "x", "--role", "boss"],
        env=service_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "invalid_role" in r.stderr


def test_roles_and_refusals(api: str, keys: dict[str, str], done_job: dict[str, Any]) -> None:
    jid = done_job["id"]
    with client(api, keys["submitter"]) as c:
        r = _sign(c, jid, reviewer="Dr A. Submitter", status="final")
        assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
        assert r.headers["content-type"] == "application/problem+json"
        # a submitter may read the history
        assert c.get(f"/v1/jobs/{jid}/report/history").json()["report_status"] == "preliminary"
    with client(api, keys["other_lab_reviewer"]) as c:
        r = _sign(c, jid, reviewer="Dr B", status="final")
        assert r.status_code == 404 and r.json()["code"] == "job_not_found"
        assert c.get(f"/v1/jobs/{jid}/report/history").status_code == 404
        assert c.get(f"/v1/jobs/{jid}/report", params={"format": "fhir"}).status_code == 404
    with client(api, keys["reviewer"]) as c:
        r = _sign(c, str(uuid.uuid4()), reviewer="Dr R", status="final")
        assert r.status_code == 404
        r = _sign(c, jid, reviewer="Dr R", status="amended", comment="too early")
        assert r.status_code == 409 and r.json()["code"] == "report_not_final"
        r = _sign(c, jid, reviewer="Dr R", status="signed")
        assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_sign_job_not_succeeded(api: str, keys: dict[str, str], done_job: dict[str, Any]) -> None:
    with client(api, keys["submitter"]) as c:
        job = c.post(
            "/v1/jobs",
            json={"upload_id": done_job["upload_id"], "options": {"backend": "template"}},
        ).json()
        c.post(f"/v1/jobs/{job['id']}/cancel")
    with client(api, keys["reviewer"]) as c:
        r = _sign(c, job["id"], reviewer="Dr R", status="final")
        assert r.status_code == 409 and r.json()["code"] == "job_not_succeeded"


def test_signoff_history_status_and_webhooks(
    api: str,
    keys: dict[str, str],
    done_job: dict[str, Any],
    hooks: WebhookSink,
    tenant_a: dict[str, str],
    service_env: dict[str, str],
) -> None:
    jid = done_job["id"]
    with client(api, keys["reviewer"]) as c:
        report_json = c.get(f"/v1/jobs/{jid}/artifacts/report.json").content
        digest = hashlib.sha256(report_json).hexdigest()
        assert c.get(f"/v1/jobs/{jid}/report").json()["report_status"] == "preliminary"
        assert c.get(f"/v1/jobs/{jid}").json()["report_status"] == "preliminary"
        _, flag = _hl7_status(c, jid)
        assert flag == "P"
        prelim = _pdf_text(c, jid)
        assert "Preliminary (research use only" in prelim and "FINAL" not in prelim

        r = _sign(c, jid, reviewer="Dr Ada Lovelace", status="final", comment="agree")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["report_status"] == "final" and len(body["signoffs"]) == 1
        first = body["signoffs"][0]
        assert first["seq"] == 1 and first["reviewer"] == "Dr Ada Lovelace"
        assert first["content_sha256"] == digest and first["comment"] == "agree"
        _, flag = _hl7_status(c, jid)
        assert flag == "F"
        # the job carries its report status (the console's list filters on it)
        assert c.get(f"/v1/jobs/{jid}").json()["report_status"] == "final"
        finals = c.get("/v1/jobs", params={"report_status": "final"}).json()["items"]
        assert jid in [j["id"] for j in finals]

        r = _sign(c, jid, reviewer="Dr Ada Lovelace", status="final")
        assert r.status_code == 409 and r.json()["code"] == "report_already_signed"
        r = _sign(c, jid, reviewer="Dr Ada Lovelace", status="amended", comment="  ")
        assert r.status_code == 422 and r.json()["code"] == "amendment_needs_comment"

        # the PDF says what the header says: preliminary as the worker made it, then signed
        assert "Report status: FINAL" in _pdf_text(c, jid)

        amend = {
            "reviewer": "Dr Grace Hopper",
            "status": "amended",
            "comment": "Domain D2 | reviewed ^ again & confirmed",
        }
        r = c.post(f"/v1/jobs/{jid}/report/sign", json=amend, headers={"Idempotency-Key": "am-1"})
        assert r.status_code == 201, r.text
        assert "Idempotent-Replayed" not in r.headers
        # a network retry of the same request: the same history back, nothing appended
        again = c.post(
            f"/v1/jobs/{jid}/report/sign", json=amend, headers={"Idempotency-Key": "am-1"}
        )
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == r.json() and len(again.json()["signoffs"]) == 2
        # a retry that lost its key, within MGS_SIGNOFF_REPEAT_WINDOW_S: the same record too
        again = _sign(c, jid, **amend)
        assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == r.json()
        # the key reused for another sign-off is a client bug, not a retry
        other = c.post(
            f"/v1/jobs/{jid}/report/sign",
            json={**amend, "comment": "other"},
            headers={"Idempotency-Key": "am-1"},
        )
        assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
        hist = c.get(f"/v1/jobs/{jid}/report/history").json()
        assert hist["report_status"] == "amended"
        assert [s["seq"] for s in hist["signoffs"]] == [1, 2]
        assert [s["status"] for s in hist["signoffs"]] == ["final", "amended"]
        assert hist["signoffs"][0] == first  # the first record did not change
        assert all(s["content_sha256"] == digest for s in hist["signoffs"])
        # the signed content did not change either
        assert c.get(f"/v1/jobs/{jid}/artifacts/report.json").content == report_json

        rep = c.get(f"/v1/jobs/{jid}/report").json()
        assert rep["report_status"] == "amended" and len(rep["signoffs"]) == 2
        assert rep["sections"]  # the report itself is still there
        md = c.get(f"/v1/jobs/{jid}/report", params={"format": "markdown"}).text
        assert "Report status: AMENDED" in md and "Addendum by Dr Grace Hopper" in md
        page = c.get(f"/v1/jobs/{jid}/report", params={"format": "html"}).text
        assert "data-report-status='amended'" in page and "Dr Ada Lovelace" in page
        assert "<dt>Report status</dt><dd>Amended: 1 addendum, latest by Dr Grace Hopper" in page
        assert "- **Report status:** Amended: 1 addendum" in md and "Preliminary (" not in md
        text = _pdf_text(c, jid)
        assert "Report status: AMENDED" in text and "Signed final by Dr Ada Lovelace" in text
        assert "Addendum by Dr Grace Hopper" in text and "reviewed ^ again & confirmed" in text
        assert "Amended: 1 addendum, latest by Dr Grace Hopper" in text  # the header table row
        _, flag = _hl7_status(c, jid)
        assert flag == "C"
        assert c.get(f"/v1/jobs/{jid}").json()["report_status"] == "amended"
        amended = c.get("/v1/jobs", params={"report_status": "amended"}).json()["items"]
        assert jid in [j["id"] for j in amended]
        finals = c.get("/v1/jobs", params={"report_status": "final"}).json()["items"]
        assert jid not in [j["id"] for j in finals]

    events = [json.loads(h["body"]) for h in hooks.wait(3, timeout=60)]
    signed = [e for e in events if e["type"] == "report.signed"]
    assert [e["data"]["report_status"] for e in signed] == ["final", "amended"]
    assert signed[1]["data"]["signoff"]["reviewer"] == "Dr Grace Hopper"
    assert signed[0]["data"]["external_sample_id"] == "S-2026-0042"
    from core.jobs.webhooks import verify

    for h in hooks.received:
        assert verify(tenant_a["secret"], h["headers"], h["body"])

    # append-only: the database itself refuses to change or remove a sign-off
    import psycopg

    url = service_env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    for sql in (
        "UPDATE report_signoffs SET reviewer = 'someone else'",
        "DELETE FROM report_signoffs",
    ):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.RaiseException):
            conn.execute(sql)


def test_fhir_export(api: str, keys: dict[str, str], done_job: dict[str, Any]) -> None:
    jid = done_job["id"]
    with client(api, keys["submitter"]) as c:
        r = c.get(f"/v1/jobs/{jid}/report", params={"format": "fhir"})
        features = c.get(f"/v1/jobs/{jid}/artifacts/features.json").json()
        pdf = c.get(f"/v1/jobs/{jid}/report", params={"format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json"
    doc = r.json()
    report = fhir_dr.DiagnosticReport.model_validate(doc)  # raises on an invalid resource
    assert report.status == "amended"  # signed final, then amended (previous test)
    assert any(i.value == "S-2026-0042" for i in report.identifier)
    assert report.conclusion and "Addendum (Dr Grace Hopper" in report.conclusion
    # the job's report.pdf, attached whole with its size and SHA-1 (FHIR R4 Attachment.hash)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    (form,) = report.presentedForm or []
    assert form.contentType == "application/pdf" and form.size == len(pdf.content)
    import base64
    import hashlib

    # fhir.resources decodes base64Binary fields on validation; the JSON carries base64
    assert form.data == pdf.content
    assert base64.b64decode(doc["presentedForm"][0]["data"]) == pdf.content
    digest = hashlib.sha1(pdf.content).digest()
    assert form.hash == digest
    assert doc["presentedForm"][0]["hash"] == base64.b64encode(digest).decode()
    contained = {res.id: res for res in report.contained}
    codes = {}
    for ref in report.result:
        obs = contained[ref.reference.lstrip("#")]
        assert obs.get_resource_type() == "Observation" and obs.status == "amended"
        assert obs.valueQuantity.system == "http://unitsofmeasure.org"
        codes[obs.code.coding[0].code] = obs.valueQuantity
    assert codes["units-analysed"].value == features["qc"]["units_analysed"]
    assert codes["n-domains"].value == len(features["domains"])
    lineages = {k for k in codes if k.startswith("lineage-")}
    assert lineages == {f"lineage-{k}" for k in features["lineage_composition"]}
    assert {"median-total-counts", "median-genes", "median-mito-percent"} <= set(codes)
    interpreters = {p.display for p in report.resultsInterpreter}
    assert interpreters == {"Dr Ada Lovelace", "Dr Grace Hopper"}


def test_hl7_export(api: str, keys: dict[str, str], done_job: dict[str, Any]) -> None:
    jid = done_job["id"]
    with client(api, keys["submitter"]) as c:
        msg, flag = _hl7_status(c, jid)
        features = c.get(f"/v1/jobs/{jid}/artifacts/features.json").json()
    msh = msg.segment("MSH")
    assert str(msh[9]) == "ORU^R01^ORU_R01" and str(msh[12]) == "2.5.1"
    assert str(msg.segment("PID")[3]).startswith("UNKNOWN")
    obr = msg.segment("OBR")
    assert str(obr[2]) == "S-2026-0042" and str(obr[3]) == jid and flag == "C"
    obx = [s for s in msg if str(s[0]) == "OBX"]
    numeric = {str(s[3][0][0]): float(str(s[5])) for s in obx if str(s[2]) == "NM"}
    assert numeric["units-analysed"] == features["qc"]["units_analysed"]
    assert numeric["n-domains"] == len(features["domains"])
    text = [str(s[5]) for s in obx if str(s[2]) == "TX"]
    assert text[0] == "Report status: AMENDED"
    # the amendment's delimiters were escaped, so the message still parses into its fields
    assert any("\\F\\" in t and "\\S\\" in t and "\\T\\" in t for t in text)
    assert [int(str(s[1])) for s in obx] == list(range(1, len(obx) + 1))


def test_unknown_format_is_a_validation_error(
    api: str, keys: dict[str, str], done_job: dict[str, Any]
) -> None:
    with client(api, keys["submitter"]) as c:
        r = c.get(f"/v1/jobs/{done_job['id']}/report", params={"format": "docx"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_concurrent_retries_of_one_signoff_append_one_record(
    api: str, keys: dict[str, str], done_job: dict[str, Any], hooks: WebhookSink
) -> None:
    """Five copies of one amendment (same Idempotency-Key) sent at once, as a client that
    retries on a timeout while the first is still running: one record, one webhook."""
    import asyncio

    import httpx

    jid = done_job["id"]
    before = len(hooks.events())
    with client(api, keys["reviewer"]) as c:
        n0 = len(c.get(f"/v1/jobs/{jid}/report/history").json()["signoffs"])
    body = {"reviewer": "Dr Rosalind Franklin", "status": "amended", "comment": "D3 re-read"}

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=api, timeout=60, headers={"Authorization": keys["reviewer"]}
        ) as ac:
            return list(
                await asyncio.gather(
                    *(
                        ac.post(
                            f"/v1/jobs/{jid}/report/sign",
                            json=body,
                            headers={"Idempotency-Key": "concurrent-1"},
                        )
                        for _ in range(5)
                    )
                )
            )

    answers = asyncio.run(go())
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert sum("Idempotent-Replayed" not in r.headers for r in answers) == 1
    assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1
    with client(api, keys["reviewer"]) as c:
        hist = c.get(f"/v1/jobs/{jid}/report/history").json()["signoffs"]
    assert len(hist) == n0 + 1 and hist[-1]["reviewer"] == "Dr Rosalind Franklin"
    hooks.wait(before + 1, timeout=60)
    time.sleep(2)  # a second webhook, had one been queued, would have come by now
    signed = [e for e in hooks.events()[before:] if e["type"] == "report.signed"]
    assert len(signed) == 1
