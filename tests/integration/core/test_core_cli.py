"""The ``analyze`` CLI: the output contract, exit codes, and the real samples in ../shared/data."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from cli import main
from core.synth import write_sample

SPOT_COLUMNS = [
    "barcode",
    "x",
    "y",
    "cluster",
    "domain",
    "cell_type",
    "lineage",
    "confidence",
    "entropy",
    "total_counts",
    "n_genes",
    "pct_mito",
    "pct_ribo",
]
FIGURES = {
    "domains.png",
    "cell_types.png",
    "lineages.png",
    "qc_maps.png",
    "composition.png",
    "nhood_enrichment.png",
    "spatially_variable_genes.png",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cli") / "s.h5ad"
    write_sample(p, layout="visium", n_spots=600, n_genes=1500, seed=3, tissue="breast")
    return p


@pytest.fixture(scope="module")
def result(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "out"
    assert main(["analyze", str(sample), "--out", str(out), "--write-h5ad", "--quiet"]) == 0
    return out


def test_analysis_json_follows_its_model_and_schema(result: Path) -> None:
    """The runner writes analysis.json through core.results; the published schema holds it."""
    from core.results import SCHEMA_VERSION, json_schema, read_analysis

    doc = json.loads((result / "analysis.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION and "unit" not in doc
    record = read_analysis(result)
    assert record.layout == "visium" and record.n_spots == doc["n_spots"]
    assert record.to_dict() == doc
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(doc, json_schema())


def test_claims_and_domain_choice_recorded(result: Path) -> None:
    """A good sample: every reliability check passes and the domain choice is explained."""
    analysis = json.loads((result / "analysis.json").read_text())
    claims = {c["name"]: c for c in analysis["claims"]}
    assert all(c["passed"] for c in claims.values()), [
        c for c in claims.values() if not c["passed"]
    ]
    choice = analysis["domains"]["choice"]
    assert choice["method"] == "valley+stability"
    chosen = [c for c in choice["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["k"] == analysis["domains"]["k"]
    assert all({"k", "silhouette", "stability", "valley"} <= set(c) for c in choice["candidates"])
    features = json.loads((result / "features.json").read_text())
    assert features["not_assessed"] == [] and len(features["domains"]) == analysis["domains"]["k"]


def test_output_contract(result: Path) -> None:
    spots = pd.read_csv(result / "spots.csv")
    assert list(spots.columns[: len(SPOT_COLUMNS)]) == SPOT_COLUMNS
    assert (
        len(spots) > 500
        and spots["confidence"].between(0, 1).all()
        and spots["entropy"].between(0, 1).all()
    )
    assert {p.name for p in (result / "figures").iterdir()} >= FIGURES
    for name in (
        "features.json",
        "analysis.json",
        "report.md",
        "report.html",
        "report.json",
        "analysis.h5ad",
    ):
        assert (result / name).is_file(), name
    analysis = json.loads((result / "analysis.json").read_text())
    prov = analysis["provenance"]
    assert prov["seed"] == 0 and len(prov["input_sha256"]) == 64
    assert {"numpy", "anndata", "medgemma-spatial"} <= set(prov["versions"])
    assert {"qc", "pca", "leiden", "moran", "domains", "figures"} <= set(prov["timings_s"])
    assert analysis["spatial"]["morans_i"]["n_tested"] > 100
    html = (result / "report.html").read_text()
    assert "data:image/png;base64," in html and "not a diagnosis" in html.lower()


def test_features_are_tissue_blind(result: Path, sample: Path) -> None:
    text = (result / "features.json").read_text()
    spots = pd.read_csv(result / "spots.csv")
    analysis = json.loads((result / "analysis.json").read_text())
    genes = {g for d in analysis["clusters"]["markers"].values() for g in (m["gene"] for m in d)}
    assert genes and not any(re.search(rf"\b{re.escape(g)}\b", text) for g in genes)
    for forbidden in [
        "breast",
        "BREAST",
        "PATIENT",
        sample.name,
        str(sample.parent),
        spots["barcode"][0],
    ]:
        assert forbidden not in text
    for cell_type in set(spots["cell_type"]):
        assert cell_type not in text
    features = json.loads(text)
    assert set(features["lineage_composition"]) <= {
        "epithelial",
        "stromal",
        "endothelial",
        "lymphoid",
        "myeloid",
        "neural/glial",
        "other",
    }


def test_bad_input_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["analyze", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "o"), "--quiet"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: not_found:")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("nope")
    assert main(["analyze", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "unsupported_format" in capsys.readouterr().err


def test_out_naming_an_existing_file_is_bad_input(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    assert main(["analyze", str(sample), "--out", str(taken), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: invalid_option: --out")
    assert taken.read_text() == "mine"
    assert main(["analyze", str(sample), "--out", str(taken / "sub"), "--quiet"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["demo", "--out", str(taken), "--quiet"]) == 2
    assert "invalid_option" in capsys.readouterr().err


def test_help_names_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "2 bad input" in out and "4 the leakage gate refused" in out


def test_bad_resolution(sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["analyze", str(sample), "--out", str(tmp_path / "o"), "--resolution", "5", "--quiet"])
        == 2
    )
    assert "invalid_option" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_progress_display_and_quiet(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(sample), "--out", str(tmp_path / "o"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "analyzing" in err and "100%" in err
    assert (
        main(["analyze", str(sample), "--out", str(tmp_path / "q"), "--no-report", "--quiet"]) == 0
    )
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--spots", "400", "--quiet"]) == 0
    assert "report.html" in capsys.readouterr().out
    assert (tmp_path / "result" / "report.html").is_file()


def test_real_spaceranger_subset(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "visium_10x_v1_subset"
    out = tmp_path / "real"
    assert main(["analyze", str(src), "--out", str(out), "--quiet"]) == 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["n_spots"] == 100 and analysis["image"]["file"] == "he_image.png"
    # the subset's hires PNG is a blank placeholder: the real lowres H&E is used, and said
    assert analysis["image"]["source"] == "lowres"
    assert any("blank" in n for n in analysis["provenance"]["notes"])
    # 100 genes named by Ensembl id: no marker overlap, said plainly rather than guessed
    assert analysis["annotation"]["available"] is False
    assert "Ensembl" in analysis["annotation"]["unavailable_reason"]
    # too shallow and sparse for most claims: each is withheld with its reason, and the
    # report says plainly what could not be assessed and why
    claims = {c["name"]: c for c in analysis["claims"]}
    assert {"name", "passed", "value", "threshold", "reason"} <= set(claims["domains"])
    for name in (
        "depth_per_unit",
        "genes_kept",
        "spatial_graph_degree",
        "domains",
        "annotation",
        "spatially_variable_genes",
    ):
        assert claims[name]["passed"] is False and claims[name]["reason"], name
    assert claims["genes_kept"]["value"] == 34
    features = json.loads((out / "features.json").read_text())
    assert features["domains"] == [] and "spatially_variable_genes" not in features["spatial"]
    assert {x["claim"] for x in features["not_assessed"]} >= {"domains", "annotation"}
    figures = {p.name for p in (out / "figures").iterdir()}
    assert not figures & {
        "domains.png",
        "cell_types.png",
        "lineages.png",
        "nhood_enrichment.png",
        "spatially_variable_genes.png",
        "composition.png",
    }
    report_md = (out / "report.md").read_text()
    limitations = report_md.split("## Limitations", 1)[1].split("## Methods", 1)[0]
    assert "Not assessed: domains" in limitations and "Not assessed: annotation" in limitations
    assert "divides into" not in report_md and "Spatial domains are not reported" in report_md
    assert "median 9 UMIs per spot" in limitations
    assert "blank" in limitations and "shallow" in limitations  # the notes reach the report
    assert "confidence of the cell-type call" not in report_md  # no such panel was drawn
    report = json.loads((out / "report.json").read_text())
    assert {c["claim"] for c in report["not_assessed"]["claims"]} >= {"domains", "annotation"}
    assert not any(f.endswith("domains.png") for f in report["figures"])
    # the same folder as a .tar.gz, as a LIMS uploads it
    tgz = tmp_path / "outs.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src, arcname="outs")
    assert (
        main(["analyze", str(tgz), "--out", str(tmp_path / "real2"), "--no-report", "--quiet"]) == 0
    )


def test_real_log_normalised_h5ad_is_refused(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "analyze",
            str(shared_data / "visium_mouse_brain_subset.h5ad"),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: missing_counts:") and "log-normalised" in err
