"""Adversarial validation of the leakage gate (``medgemma-spatial eval leakage``).

For every prompt strategy and every planted tissue (colon, brain, breast, lung, liver,
kidney, skin, prostate) it builds prompts through the real prompt builder from
features into which a tissue name, a tissue-revealing cell type, an organ-specific
gene, the sample id, a metadata string, a barcode, a file path or a raw count has been
planted, with a leakage context shaped like the synthetic generator's planted
metadata. Every planted prompt must be refused for the planted reason; every clean
prompt must pass (the gate's own negatives).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.report.examples import example_features
from core.report.leakage import LeakageContext, LeakageContextDoc, find_leaks
from core.report.prompts import STRATEGIES, build_prompt

# tissue -> (organ words to plant, tissue-revealing cell type, organ-specific gene)
PLANTED_TISSUES: dict[str, tuple[str, str, str]] = {
    "colon": ("colon", "goblet cells", "MUC2"),
    "brain": ("cerebral cortex", "astrocytes", "OLIG2"),
    "breast": ("breast", "luminal epithelial cells", "ESR1"),
    "lung": ("lung", "alveolar type II cells", "SFTPC"),
    "liver": ("hepatic", "hepatocytes", "ALB"),
    "kidney": ("renal", "podocytes", "NPHS2"),
    "skin": ("skin", "keratinocytes", "KRT10"),
    "prostate": ("prostate", "luminal cells", "KLK3"),
}


@dataclass(frozen=True)
class EvalRow:
    """One prompt: what was planted, what the gate said, and whether that is right."""

    tissue: str
    strategy: str
    case: str
    expected: str  # "pass" or a finding category
    categories: tuple[str, ...]

    @property
    def ok(self) -> bool:
        if self.expected == "pass":
            return not self.categories
        return self.expected in self.categories


def synth_like_context(tissue: str, seed: int) -> LeakageContextDoc:
    """A leakage context like the one the analysis writes for ``bench/synth.py`` samples."""
    lib = f"sample_{tissue}_{seed}"
    sample_id = f"PATIENT-{seed:04d}-{tissue.upper()}"
    return {
        "metadata_strings": [
            tissue,
            sample_id,
            f"/data/{tissue}/{lib}.tif",
            "visium",
            f"Cohort {seed} Oncology Study",
        ],
        "sample_ids": [sample_id],
        "library_ids": [lib],
        "barcode_examples": ["AACGTTGCATGCAGTC-1", "GGTACCATGCATCAAA-1"],
        "source_paths": [f"/data/incoming/{lib}.h5ad"],
    }


def _set_domain_id(f: dict[str, Any], value: str) -> None:
    f["domains"][0]["id"] = value


def _set_unit_description(f: dict[str, Any], value: str) -> None:
    f["platform"]["unit_description"] = value


def _plants(tissue: str, seed: int) -> list[tuple[str, str, Callable[[dict[str, Any]], None]]]:
    organ, cell, gene = PLANTED_TISSUES[tissue]
    ctx = synth_like_context(tissue, seed)

    def lineage_key(f: dict[str, Any]) -> None:
        comp = f["lineage_composition"]
        comp[cell] = comp.pop("epithelial")

    return [
        ("clean", "pass", lambda f: None),
        ("tissue name", "organ_word", lambda f: _set_domain_id(f, f"{organ} D1")),
        ("cell type", "cell_type", lineage_key),
        ("organ gene", "organ_gene", lambda f: _set_domain_id(f, f"D1 ({gene}-high)")),
        (
            "sample id",
            "identifier",
            lambda f: _set_unit_description(f, f"55 um spots of {ctx['sample_ids'][0]}"),
        ),
        ("library id", "identifier", lambda f: _set_domain_id(f, ctx["library_ids"][0])),
        (
            "metadata",
            "metadata",
            lambda f: _set_unit_description(f, f"55 um spots ({ctx['metadata_strings'][-1]})"),
        ),
        ("barcode", "identifier", lambda f: _set_domain_id(f, ctx["barcode_examples"][0])),
        (
            "path",
            "path",
            lambda f: _set_unit_description(f, f"spots from {ctx['source_paths'][0]}"),
        ),
        ("raw count", "raw_count", lambda f: _set_domain_id(f, "D1 (18734 UMIs)")),
    ]


def run_leakage_eval(tissues: list[str] | None = None, seed: int = 7) -> list[EvalRow]:
    """Every (tissue, strategy, plant) prompt through the builder and the gate."""
    rows = []
    for tissue in tissues or list(PLANTED_TISSUES):
        ctx = LeakageContext.from_dict(synth_like_context(tissue, seed))
        for strategy in STRATEGIES:
            for case, expected, plant in _plants(tissue, seed):
                features = copy.deepcopy(example_features())
                plant(features)
                prompt = build_prompt(features, strategy, n_images=1)
                findings = find_leaks(prompt.text, ctx, features)
                rows.append(
                    EvalRow(
                        tissue,
                        strategy,
                        case,
                        expected,
                        tuple(sorted({f.category for f in findings})),
                    )
                )
    return rows


def format_table(rows: list[EvalRow]) -> str:
    """A fixed-width pass/fail table with a summary line."""
    head = f"{'tissue':<9} {'strategy':<17} {'case':<12} {'expected':<11} {'gate found':<36} result"
    lines = [head, "-" * len(head)]
    for r in rows:
        found = ",".join(r.categories) or "nothing (passed)"
        lines.append(
            f"{r.tissue:<9} {r.strategy:<17} {r.case:<12} {r.expected:<11} "
            f"{found[:36]:<36} {'PASS' if r.ok else 'FAIL'}"
        )
    n_fail = sum(not r.ok for r in rows)
    lines.append(f"{len(rows)} prompts, {len(rows) - n_fail} passed, {n_fail} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit status 0 when every row passes, 1 otherwise."""
    p = argparse.ArgumentParser(
        prog="medgemma-spatial eval leakage",
        description="Adversarial validation of the prompt leakage gate.",
    )
    p.add_argument(
        "--tissue",
        action="append",
        choices=sorted(PLANTED_TISSUES),
        help="only these planted tissues (repeatable); default all",
    )
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    rows = run_leakage_eval(a.tissue, a.seed)
    print(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
