"""write_report end to end with the template backend, the leakage refusal and failing models."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ModelUnavailable, PromptLeakage
from core.report import ReportOptions, write_report
from core.report.evaluation import synth_like_context
from core.report.examples import example_features
from core.report.prompts import SECTIONS, STRATEGIES
from tests.fixtures.report_outputs import write_output_dir


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_template_report_files_and_provenance(tmp_path: Path, strategy: str) -> None:
    d = write_output_dir(tmp_path, context=synth_like_context("brain", 1))
    seen: list[float] = []
    prov = write_report(d, ReportOptions(prompt_strategy=strategy, tiles=1), progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    prompt = (d / "prompt.txt").read_text()
    assert prov["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert prov["prompt_strategy"] == strategy
    report = json.loads((d / "report.json").read_text())
    assert [s["title"] for s in report["sections"]] == [t for _, t in SECTIONS]
    assert report["provenance"]["prompt_sha256"] == prov["prompt_sha256"]
    assert report["narrative_source"]["written_by_language_model"] is False
    assert "without a language model" in report["narrative_source"]["label"]
    assert "not a diagnosis" in report["disclaimer"]
    for s in report["sections"]:
        assert "computed" in s and "narrative" in s
    pops = report["sections"][2]["computed"]["populations"]
    assert pops and {"cell_type", "units", "fraction", "mean_confidence"} <= set(pops[0])
    # The template restates computed numbers only: nothing unverified.
    assert prov["unverified_numbers"] == 0 and prov["numbers_in_narrative"] > 0
    assert 0 < prov["parroting"]["score"] <= 1
    md = (d / "report.md").read_text()
    assert "Not a diagnosis" in md and "### Cell populations and composition" in md
    assert report["status"] == "complete" and report["claim_check"]["counts"]["contradicted"] == 0
    html = (d / "report.html").read_text()
    assert "data:image/png;base64," in html and "src='figures/" not in html
    assert html.count("<img") == 2  # model input overview + figures/domains.png


def _assert_failure_recorded(d: Path, code: str) -> None:
    """A failed report stage: report.json records it, no other report file, analysis intact."""
    report = json.loads((d / "report.json").read_text())
    assert report["status"] == "failed" and report["error"]["code"] == code
    assert not any((d / f).exists() for f in ("report.md", "report.html", "report.pdf"))
    assert not list(d.glob(".*.tmp"))
    assert (d / "features.json").is_file() and (d / "analysis.json").is_file()


def test_text_only_when_no_image(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path, image=None)
    prov = write_report(d, ReportOptions())
    assert prov["image"]["available"] is False
    assert "no H&E image is available" in (d / "prompt.txt").read_text()
    report = json.loads((d / "report.json").read_text())
    morph = next(s for s in report["sections"] if s["id"] == "morphology")
    assert "No H&E image" in morph["narrative"]


def test_leaking_features_are_refused_before_any_backend(tmp_path: Path) -> None:
    f = example_features()
    f["domains"][0]["id"] = "colon crypts"
    d = write_output_dir(tmp_path, features=f, context=synth_like_context("colon", 0))
    # The openai backend points at a closed port: reaching it would raise ModelUnavailable.
    settings = Settings(openai_base_url=f"http://127.0.0.1:{_free_port()}/v1", openai_max_retries=0)
    with pytest.raises(PromptLeakage) as e:
        write_report(d, ReportOptions(backend="openai"), settings=settings)
    assert "'colon'" in e.value.detail and "nothing was sent" in e.value.detail
    findings = json.loads((d / "leakage_findings.json").read_text())["findings"]
    assert {f["category"] for f in findings} >= {"organ_word", "metadata"}
    assert not (d / "prompt.txt").exists()
    # the analysis stands: the report is written with its computed findings, no narrative
    report = json.loads((d / "report.json").read_text())
    assert report["provenance"]["leakage_gate"]["passed"] is False
    assert report["provenance"]["backend"] is None
    assert report["narrative_source"]["label"].startswith("no narrative: the leakage gate")
    assert all(s["narrative"] == "" for s in report["sections"])
    assert any(s["computed"] for s in report["sections"])
    assert "no narrative" in (d / "report.md").read_text()
    assert (d / "report.html").is_file()
    # the machine-readable why (the service's job.report carries the same)
    assert report["status"] == "narrative_withheld"
    assert report["narrative"]["status"] == "withheld"
    assert report["narrative"]["code"] == "prompt_leakage"


def test_planted_metadata_reaching_the_prompt_is_refused(tmp_path: Path) -> None:
    ctx = synth_like_context("breast", 2)
    f = example_features()
    f["platform"]["unit_description"] = f"spots of {ctx['sample_ids'][0]}"
    d = write_output_dir(tmp_path, features=f, context=ctx)
    with pytest.raises(PromptLeakage, match="sample id"):
        write_report(d, ReportOptions())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_openai_server_fails_clearly(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path)
    settings = Settings(
        openai_base_url=f"http://127.0.0.1:{_free_port()}/v1",
        openai_max_retries=1,
        openai_timeout_s=2,
    )
    with pytest.raises(ModelUnavailable, match=r"cannot reach .*after 2 attempt"):
        write_report(d, ReportOptions(backend="openai"), settings=settings)
    _assert_failure_recorded(d, "model_unavailable")  # no silent template fallback


def test_missing_transformers_model_fails_clearly(tmp_path: Path) -> None:
    d = write_output_dir(tmp_path)
    with pytest.raises(ModelUnavailable):
        write_report(d, ReportOptions(backend="transformers", model=str(tmp_path / "no-model")))
    _assert_failure_recorded(d, "model_unavailable")


def test_missing_features_is_an_input_error(tmp_path: Path) -> None:
    from core.errors import InputError

    with pytest.raises(InputError, match=r"features\.json"):
        write_report(tmp_path, ReportOptions())


def test_hub_model_offline_fails_fast_without_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub id whose weights are not cached: model_unavailable before any download attempt."""
    pytest.importorskip("transformers", reason="the model extra is not installed")
    from core.report.backends import hf

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    probes: list[float] = []
    real_probe = hf._hub_reachable
    monkeypatch.setattr(
        hf,
        "_hub_reachable",
        lambda timeout_s=3.0: probes.append(timeout_s) or real_probe(timeout_s),
    )
    d = write_output_dir(tmp_path / "out")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match=r"not in the local Hugging Face cache.*offline"):
        write_report(d, ReportOptions(backend="transformers", model="google/medgemma-4b-it"))
    assert probes == []  # offline: not even a probe
    _assert_failure_recorded(d, "model_unavailable")
    # online but the hub does not answer (a closed port on loopback): one short probe
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelUnavailable, match="did not answer"):
        write_report(d, ReportOptions(backend="transformers", model="google/medgemma-4b-it"))
    assert probes == [hf.HUB_PROBE_TIMEOUT_S]
