"""The leakage context built from an AnnData holds what synth.py plants."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.report.leakage import LeakageContext, find_leaks, leakage_context_from_adata

SYNTH = Path(__file__).resolve().parents[4] / "shared" / "bench" / "synth.py"


@pytest.mark.skipif(not SYNTH.is_file(), reason=f"synthetic generator not present at {SYNTH}")
def test_context_from_a_synth_sample_catches_its_planted_metadata(tmp_path: Path) -> None:
    import anndata as ad

    out = tmp_path / "s.h5ad"
    subprocess.run(
        [
            sys.executable,
            str(SYNTH),
            "--spots",
            "60",
            "--genes",
            "300",
            "--seed",
            "2",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    a = ad.read_h5ad(out)
    doc = leakage_context_from_adata(a, [str(out)])
    tissue = a.uns["metadata"]["tissue_type"]
    lib = next(iter(a.uns["spatial"]))
    assert tissue in doc["metadata_strings"]
    assert a.obs["sample_id"].iloc[0] in doc["sample_ids"]
    assert doc["library_ids"] == [lib]
    assert doc["barcode_examples"][0] == a.obs_names[0]
    ctx = LeakageContext.from_dict(doc)
    text = f"section {a.obs['sample_id'].iloc[0]} from {lib}, barcode {a.obs_names[3]}, s.h5ad"
    cats = {f.category for f in find_leaks(text, ctx)}
    assert {"identifier", "organ_word", "path"} <= cats
    assert find_leaks("epithelial 31% of spots in D1", ctx) == []
