"""The leakage gate: what it refuses, what it lets through, and the adversarial eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import PromptLeakage
from core.report import evaluation
from core.report.examples import example_features
from core.report.leakage import (
    LeakageContext,
    check_prompt,
    default_lexicon,
    find_leaks,
)
from core.report.prompts import STRATEGIES, build_prompt
from core.results import AnalysisRecord

PANGLAO = (
    Path(__file__).resolve().parents[4] / "shared" / "data" / "PanglaoDB_markers_27_Mar_2020.tsv"
)


def _cats(text: str, ctx: LeakageContext | None = None, features: object = None) -> set[str]:
    return {f.category for f in find_leaks(text, ctx, features)}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_clean_prompts_pass_with_synth_like_context(strategy: str) -> None:
    features = example_features()
    ctx = LeakageContext.from_dict(evaluation.synth_like_context("colon", 3))
    prompt = build_prompt(features, strategy, n_images=3)
    assert find_leaks(prompt.text, ctx, features) == []
    check_prompt(prompt.text, ctx, features)  # does not raise


@pytest.mark.parametrize(
    "text",
    [
        "a section of colon",
        "COLONIC mucosa",
        "sample_colon_0",
        "PATIENT-0001-COLON",
        "both lungs",
        "Cerebral tissue",
        "mammary gland",
        "hepatic lobule",
        "renal cortex",
        "the prostate",
        "gastric pits",
        "pulmonary",
        "cardiac muscle",
        "skin",
    ],
)
def test_organ_words_are_refused(text: str) -> None:
    assert "organ_word" in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        "goblet cells",
        "Enterocytes",
        "a neuron",
        "astrocytes",
        "oligodendrocyte",
        "microglia",
        "hepatocytes",
        "alveolar",
        "podocyte",
        "keratinocytes",
        "acinar cells",
        "cardiomyocyte",
        "luminal",
    ],
)
def test_tissue_revealing_cell_types_are_refused(text: str) -> None:
    assert "cell_type" in _cats(text)


@pytest.mark.parametrize("text", ["MUC2-high domain", "OLIG2", "Sftpc", "ALB expression"])
def test_organ_specific_genes_are_refused(text: str) -> None:
    assert "organ_gene" in _cats(text)


def test_lineage_and_prompt_vocabulary_is_not_refused() -> None:
    text = (
        "epithelial stromal endothelial lymphoid myeloid neural/glial other immune "
        "vascular glandular stroma human tissue QC FDR H&E D1 D12 Q1 Q6 Moran's I"
    )
    assert find_leaks(text) == []


def test_identifiers_paths_and_metadata_are_refused() -> None:
    ctx = LeakageContext.from_dict(
        {
            "sample_ids": ["S-77-XQ"],
            "library_ids": ["lib_abc"],
            "barcode_examples": ["AAACCTGAGAAACCAT-1"],
            "source_paths": ["/mnt/run3/slide9.h5ad"],
            "metadata_strings": ["Prof Example cohort", "visium", "1"],
        }
    )
    assert _cats("id S-77-XQ", ctx) == {"identifier"}
    assert _cats("lib_abc", ctx) == {"identifier"}
    assert "identifier" in _cats("AAACCTGAGAAACCAT-1", ctx)
    assert "identifier" in _cats("barcode TTTGGGCCCAAATTTG", ctx)  # shaped like one
    assert "identifier" in _cats("s_008um_00012_00034-1", ctx)  # Visium HD bin
    assert {"path", "identifier"} <= _cats("read /mnt/run3/slide9.h5ad", ctx)
    assert "identifier" in _cats("slide9 was used", ctx)  # the file's stem alone
    assert "path" in _cats("see C:\\data\\x.tif or s3://bucket/key", ctx)
    assert _cats("from the Prof Example cohort", ctx) == {"metadata"}
    # Harmless and very short metadata values do not make the gate refuse everything.
    assert _cats("visium spots, 1 section", ctx) == set()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_metadata_equal_to_the_prompts_own_words_does_not_block(strategy: str) -> None:
    ctx = LeakageContext.from_dict(
        {"metadata_strings": ["stroma", "epithelial", "immune", "tumor", "Block 7 stroma"]}
    )
    prompt = build_prompt(example_features(), strategy)
    assert find_leaks(prompt.text, ctx, example_features()) == []
    assert _cats("Block 7 stroma", ctx) == {"metadata"}


def test_raw_counts_outside_the_aggregated_fields_are_refused() -> None:
    features = {"qc": {"units_analysed": 4900}}
    assert _cats("4900 spots", features=features) == set()
    assert _cats("4,900 spots", features=features) == set()
    assert _cats("18734 UMIs", features=features) == {"raw_count"}
    assert _cats("0.155 and 12.5 and 99", features=features) == set()


def test_aggregates_in_their_own_formats_pass() -> None:
    """Percentages (100% included), fractions and counts rounded as features.json rounds
    them are aggregates; a precise large integer that is no feature is still refused."""
    features = {"annotation": {"fraction_low_confidence": 1.0}, "qc": {"units_analysed": 12345}}
    assert _cats("100% of bins with low confidence", features=features) == set()
    assert _cats("100 % of spots; 100 percent", features=features) == set()
    assert _cats("0.45 of spots, 45%", features=features) == set()
    assert _cats("12000 units", features=features) == set()  # 12345 at two significant figures
    assert _cats("12,000 units", features=features) == set()
    assert _cats("12346 units", features=features) == {"raw_count"}
    assert _cats("100 units", features=features) == {"raw_count"}  # not a percentage
    assert _cats("18734%", features=features) == {"raw_count"}


def test_prompt_with_every_spot_low_confidence_passes() -> None:
    features = example_features()
    features["annotation"]["fraction_low_confidence"] = 1.0
    features["annotation"]["median_confidence"] = 0.09
    prompt = build_prompt(features, "anti_parroting", n_images=1)
    assert "100%" in prompt.text
    assert find_leaks(prompt.text, None, features) == []


def test_check_prompt_lists_every_finding_and_why() -> None:
    with pytest.raises(PromptLeakage) as e:
        check_prompt("goblet cells of the colon, MUC2 high, 18734 UMIs", features={})
    msg = e.value.detail
    assert e.value.code == "prompt_leakage"
    assert "4 finding(s)" in msg
    for word in ("goblet", "colon", "MUC2", "18734", "organ", "marker gene"):
        assert word in msg


def test_marker_table_genes_extend_the_lexicon() -> None:
    lex = default_lexicon().with_marker_genes(
        {"ZZTOP1": {"Brain"}, "ZZTOP2": {"Brain", "Liver"}, "ZZTOP3": {"Immune system"}}
    )
    cats = {f.match: f.category for f in find_leaks("ZZTOP1 ZZTOP2 ZZTOP3", lexicon=lex)}
    assert cats == {"ZZTOP1": "organ_gene"}


@pytest.mark.skipif(not PANGLAO.is_file(), reason="../shared/data PanglaoDB table absent")
def test_run_marker_table_reaches_the_lexicon() -> None:
    """The runner records the table as provenance.options.markers and
    annotation.marker_table ("panglao:<name>"): the report finds it there (issue 12)."""
    from core.report import _lexicon, _marker_table_path
    from tests.fixtures.report_outputs import example_analysis

    base = example_analysis()

    def with_table(markers: str | None, source: str) -> AnalysisRecord:
        return base.model_copy(
            update={
                "annotation": base.annotation.model_copy(update={"marker_table": source}),
                "provenance": base.provenance.model_copy(
                    update={"options": {"markers": markers, "species": "Hs"}}
                ),
            }
        )

    analysis = with_table(str(PANGLAO), f"panglao:{PANGLAO.name}")
    assert _marker_table_path(analysis) == PANGLAO
    assert len(_lexicon(analysis).organ_genes) > len(default_lexicon().organ_genes)
    assert _marker_table_path(with_table(None, "default")) is None


def test_word_lists_are_data_files_derived_from_the_marker_table() -> None:
    lex = default_lexicon()
    assert {"colon", "breast", "brain", "lung", "renal", "hepatic"} <= lex.organ_words
    assert {"goblet", "astrocyte", "hepatocyte"} <= lex.cell_types
    assert len(lex.organ_genes) > 1000
    if not PANGLAO.is_file():
        pytest.skip(f"PanglaoDB table not present at {PANGLAO}")
    from core.report.data.build_lists import build

    lists = build(PANGLAO)
    assert set(lists["organ_words"]) == set(lex.organ_words)
    assert set(lists["tissue_cell_types"]) == set(lex.cell_types)
    assert {ln.split("\t")[0] for ln in lists["organ_genes"]} == set(lex.organ_genes)


def test_eval_leakage_every_strategy_and_planted_tissue(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluation.main([]) == 0
    out = capsys.readouterr().out
    rows = evaluation.run_leakage_eval()
    assert {r.tissue for r in rows} >= {"colon", "brain", "breast", "lung"}
    assert {r.strategy for r in rows} == set(STRATEGIES)
    assert sum(r.expected == "pass" for r in rows) == len(STRATEGIES) * len(
        evaluation.PLANTED_TISSUES
    )
    assert "0 failed" in out and "FAIL" not in out.replace("0 failed", "")
