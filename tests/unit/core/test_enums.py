"""The named values of the contracts."""

from __future__ import annotations

from core.enums import JobStage, Phase


def test_phase_follows_the_stage() -> None:
    assert [Phase.of_stage(s) for s in JobStage] == [Phase.ANALYSIS, Phase.ANALYSIS, Phase.REPORT]
    assert Phase.of_stage("reporting") == "report" and Phase.ANALYSIS == "analysis"
