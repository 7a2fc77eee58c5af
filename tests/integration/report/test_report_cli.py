"""The whole path through the real CLI: a seeded synthetic sample (with an organ name and a
sample id planted in its metadata), the analysis, the leakage gate and a narrative written
by a tiny random-weight Gemma 3, through transformers and through an OpenAI-compatible
server on loopback. Model fixtures are in conftest.py."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import main
from core.config import get_settings

MAX_TOKENS = 24
SAMPLE_NAME = "visium_demo_0.h5ad"


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread: these samples are tiny, and on a busy machine threaded BLAS is
    several times slower than one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from core.synth import write_sample

    path = tmp_path_factory.mktemp("sample") / SAMPLE_NAME
    write_sample(path, layout="visium", n_spots=600, n_genes=1500, seed=0)
    return path


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read again from the environment, before and after the test."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def planted_strings(sample: Path) -> list[str]:
    """What the synthetic sample plants (organ, sample id, library id) plus its barcodes and
    file name: none of it may reach the prompt."""
    import anndata as ad

    a = ad.read_h5ad(sample)
    meta = dict(a.uns["metadata"])
    strings = [
        str(meta["tissue_type"]),
        str(meta["sample_id"]),
        *a.uns["spatial"].keys(),
        sample.name,
        sample.stem,
    ]
    with open(str(sample) + ".truth.csv", newline="") as fh:
        barcodes = [row["barcode"] for row in csv.DictReader(fh)]
    strings += barcodes + [b.split("-")[0] for b in barcodes]
    assert "colon" in strings and any(s.startswith("PATIENT-") for s in strings)
    return strings


def assert_clean_prompt(out: Path, sample: Path) -> str:
    prompt = (out / "prompt.txt").read_text(encoding="utf-8")
    low = prompt.lower()
    leaked = [s for s in planted_strings(sample) if s.lower() in low]
    assert not leaked, f"planted strings reached the prompt: {leaked[:5]}"
    return prompt


def analyze(sample: Path, out: Path, *extra: str) -> int:
    return main(["analyze", str(sample), "--out", str(out), "--quiet", *extra])


def read_report(out: Path) -> dict[str, Any]:
    for name in ("report.json", "report.md", "report.html", "prompt.txt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def assert_model_narrative(report: dict[str, Any], prompt: str, backend: str, model: str) -> None:
    from core.report.backends.template import write_template_narrative

    prov = report["provenance"]
    assert prov["backend"] == backend and prov["model"] == model
    assert prov["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert prov["written_by_language_model"] is True
    assert prov["decoding"]["max_new_tokens"] == MAX_TOKENS
    assert prov["leakage_gate"]["passed"] is True
    assert prov["images_sent"] == 1
    assert report["narrative_source"]["written_by_language_model"] is True
    raw = report["narrative_raw"]
    assert raw and "deterministic template" not in raw
    assert raw != write_template_narrative({}, has_image=True)


@pytest.mark.model
def test_cli_transformers_backend(sample: Path, tiny_model: str, tmp_path: Path) -> None:
    from PIL import Image

    from core.report.backends import GenerationRequest
    from core.report.backends.hf import TransformersBackend

    out = tmp_path / "out"
    rc = analyze(
        sample,
        out,
        "--backend",
        "transformers",
        "--model",
        tiny_model,
        "--max-new-tokens",
        str(MAX_TOKENS),
    )
    assert rc == 0
    report = read_report(out)
    prompt = assert_clean_prompt(out, sample)
    assert_model_narrative(report, prompt, "transformers", tiny_model)
    prov = report["provenance"]
    assert prov["decoding"]["do_sample"] is False
    assert 0 < prov["backend_details"]["output_tokens"] <= MAX_TOKENS
    # The narrative is this model's greedy answer to exactly this prompt and image.
    image = Image.open(out / "he_model_input.png").convert("RGB")
    direct = TransformersBackend(tiny_model).generate(
        GenerationRequest(prompt, [image], {}, MAX_TOKENS)
    )
    assert report["narrative_raw"] == direct.text


@pytest.mark.model
def test_cli_openai_backend(
    sample: Path,
    server: tuple[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_settings: None,
) -> None:
    url, handler = server
    monkeypatch.setenv("MGS_OPENAI_BASE_URL", url)
    monkeypatch.setenv("MGS_OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("MGS_OPENAI_MAX_RETRIES", "0")
    get_settings.cache_clear()
    out = tmp_path / "out"
    rc = analyze(
        sample,
        out,
        "--backend",
        "openai",
        "--model",
        "served-tiny-gemma3",
        "--max-new-tokens",
        str(MAX_TOKENS),
    )
    assert rc == 0
    report = read_report(out)
    prompt = assert_clean_prompt(out, sample)
    assert_model_narrative(report, prompt, "openai", "served-tiny-gemma3")
    assert len(handler.requests_seen) == 1
    sent = handler.requests_seen[0]
    assert sent["model"] == "served-tiny-gemma3" and sent["max_tokens"] == MAX_TOKENS
    assert sent["messages"][0]["content"][-1]["text"] == prompt


def test_cli_missing_model_exits_1_with_one_line(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before torch is imported, so this runs without the model extra too."""
    out = tmp_path / "out"
    rc = analyze(sample, out, "--backend", "transformers", "--model", "/nonexistent")
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model_unavailable: "), err
    assert "/nonexistent" in err[0]
    failed = json.loads((out / "report.json").read_text())  # the failure, recorded
    assert failed["status"] == "failed" and not (out / "report.html").exists()


def test_cli_planted_leak_exits_4_and_sends_nothing(
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A features stage that lets the organ through is stopped by the gate: exit 4 (not 2,
    bad input), every analysis artifact kept, the report written without a narrative."""
    import core.analysis.features as feats

    real = feats.tissue_blind_features

    def leaky(*args: Any, **kwargs: Any) -> dict[str, Any]:
        f = real(*args, **kwargs)
        f["platform"]["unit_description"] += ", from the colon"
        return f

    monkeypatch.setattr(feats, "tissue_blind_features", leaky)
    out = tmp_path / "out"
    # openai backend pointing nowhere: had the gate let the prompt through, this would fail
    # with model_unavailable (exit 1), not prompt_leakage.
    monkeypatch.setenv("MGS_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    get_settings.cache_clear()
    try:
        rc = analyze(sample, out, "--backend", "openai")
    finally:
        get_settings.cache_clear()
    assert rc == 4
    err = capsys.readouterr().err
    assert err.startswith("error: prompt_leakage: ")
    assert "colon" in err
    assert not (out / "prompt.txt").exists()
    for name in (
        "spots.csv",
        "features.json",
        "analysis.json",
        "report.json",
        "report.md",
        "report.html",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["provenance"]["leakage_gate"]["passed"] is False
    assert all(s["narrative"] == "" for s in report["sections"])
    findings = json.loads((out / "leakage_findings.json").read_text())
    assert findings["findings"]


def test_cli_template_backend_without_annotation(sample: Path, tmp_path: Path) -> None:
    """A marker table with no genes in the sample: the analysis marks the annotation
    unavailable and the report says so."""
    table = tmp_path / "markers.tsv"
    table.write_text(
        "cell_type\tlineage\tgenes\n"
        "Alpha cells\tepithelial\tNOPE1,NOPE2,NOPE3,NOPE4\n"
        "Beta cells\tstromal\tNOPE5,NOPE6,NOPE7,NOPE8\n"
    )
    out = tmp_path / "out"
    assert analyze(sample, out, "--markers", str(table), "--backend", "template") == 0
    features = json.loads((out / "features.json").read_text())
    assert features["annotation"]["available"] is False
    prompt = assert_clean_prompt(out, sample)
    assert "cell-type annotation was unavailable" in prompt
    report = read_report(out)
    assert report["provenance"]["backend"] == "template"
    assert "Cell types were not annotated" in (out / "report.md").read_text()


def test_cli_eval_leakage_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "leakage"]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_cli_eval_leakage_takes_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "leakage", "--tissue", "colon", "--seed", "3"]) == 0
    assert "30 prompts, 30 passed, 0 failed" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["analyze", "x.h5ad", "--out", "y", "--tissue", "colon"])  # not an analyze option
