"""Prompt strategies: built only from features, tissue-blind, reproducible."""

from __future__ import annotations

import hashlib

import pytest

from core.errors import BadOption
from core.report.examples import example_features
from core.report.prompts import SECTIONS, STRATEGIES, build_prompt


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_speaks_of_human_tissue(strategy: str) -> None:
    p = build_prompt(example_features(), strategy)
    assert "human tissue" in p.text
    assert p.sha256 == hashlib.sha256(p.text.encode()).hexdigest()
    assert p.text == build_prompt(example_features(), strategy).text


def test_strategies_differ_in_their_task() -> None:
    texts = {s: build_prompt(example_features(), s).text for s in STRATEGIES}
    assert "Q1." in texts["guided_questions"] and "Q6." in texts["guided_questions"]
    for _, title in SECTIONS:
        assert f"## {title}" in texts["create_report"]
        assert f"## {title}" in texts["anti_parroting"]
    assert "do not restate the numbers" in texts["anti_parroting"]
    assert "how certain" in texts["anti_parroting"]
    assert "do not restate" not in texts["create_report"]


def test_only_known_feature_fields_reach_the_prompt() -> None:
    f = example_features()
    f["sample_id"] = "SECRET-SAMPLE-1"
    f["qc"]["library_id"] = "SECRET-LIB"
    f["platform"]["layout"] = "visium"
    text = build_prompt(f, "create_report").text
    assert "SECRET" not in text and "visium" not in text.lower()
    assert "4900" in text and "epithelial 31%" in text and "D1" in text


def test_image_count_is_stated() -> None:
    f = example_features()
    assert "no H&E image is available" in build_prompt(f, n_images=0).text
    assert "one H&E overview" in build_prompt(f, n_images=1).text
    assert "2 higher-magnification views" in build_prompt(f, n_images=3).text


def test_tolerates_missing_and_extra_keys() -> None:
    text = build_prompt({"qc": {"units_analysed": 10}, "new_key": {"x": 1}}).text
    assert "10 spots analysed" in text


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(BadOption, match="unknown prompt strategy"):
        build_prompt(example_features(), "free_form")
