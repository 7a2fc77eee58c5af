"""One options model for the CLI, the API and the workers (issue 12: one set of bounds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from core.errors import BadOption
from core.options import AnalysisOptions, JobOptions, PromptStrategy, ReportBackend, ReportOptions
from core.report.backends import BACKENDS
from core.report.prompts import STRATEGIES

# a value each stage model refuses, and one it accepts, for every field a job can set
BAD = {
    "resolution": [5, 0, -1, "x"],
    "seed": [-1, 2**31],
    "markers": ["a\x00b", "", "x" * 2000],
    "species": ["Dm"],
    "organs": [["Brain\x00"], ["x"] * 51],
    "n_domains": [1, 31],
    "prompt_strategy": ["no_such_strategy", ""],
    "tiles": [-1, 9],
    "backend": ["gpt", ""],
}


def test_enums_are_the_registries() -> None:
    assert {b.value for b in ReportBackend} == set(BACKENDS)
    assert {s.value for s in PromptStrategy} == set(STRATEGIES)


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, vs in BAD.items() for v in vs])
def test_job_options_refuse_what_a_stage_refuses(field: str, value: object) -> None:
    with pytest.raises(BadOption, match=field):
        JobOptions.parse({field: value})
    stage = AnalysisOptions if field in AnalysisOptions.model_fields else ReportOptions
    with pytest.raises(BadOption, match=field):
        stage.parse({field: value})


def test_job_fields_share_the_stage_bounds() -> None:
    for name, f in JobOptions.model_fields.items():
        if name == "backend":  # optional at the door: the server's default applies
            continue
        stage = AnalysisOptions if name in AnalysisOptions.model_fields else ReportOptions
        assert f.metadata == stage.model_fields[name].metadata, name
        assert f.default == stage.model_fields[name].default, name


def test_job_options_build_the_stage_options() -> None:
    j = JobOptions.parse(
        {"resolution": 0.5, "seed": 7, "prompt_strategy": "create_report", "tiles": 2}
    )
    a = j.analysis(markers="/srv/tables/x.tsv", write_h5ad=True)
    assert (a.resolution, a.seed, a.markers, a.write_h5ad) == (0.5, 7, "/srv/tables/x.tsv", True)
    r = j.report("template", max_new_tokens=64)
    assert (r.backend, r.prompt_strategy, r.tiles, r.max_new_tokens) == (
        "template",
        "create_report",
        2,
        64,
    )
    assert JobOptions.parse({"backend": "openai"}).report("template").backend == "openai"
    # what the API stores round-trips through the worker's parse
    assert JobOptions.parse(j.as_dict()) == j


def test_options_are_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        AnalysisOptions().resolution = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--resolution", "5"], "resolution"),
        (["--n-domains", "1"], "n_domains"),
        (["--tiles", "99"], "tiles"),
        (["--max-new-tokens", "3"], "max_new_tokens"),
    ],
)
def test_cli_refuses_out_of_bounds_with_exit_2(
    args: list[str], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "s.h5ad"
    sample.write_bytes(b"not read: options are checked first")
    rc = main(["analyze", str(sample), "--out", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: invalid_option:") and field in err[0]
    assert not (tmp_path / "out").exists()
