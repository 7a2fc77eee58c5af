"""The named values of the project's contracts: layout, unit, stage, job state and phase.

Each is a ``StrEnum``: a member *is* its string value, so JSON, HTTP and database values are
the plain strings (``"visium"``, ``"queued"``), and comparing a member with its string is true.
Import them from here (``core.options``, ``core.db.models`` and ``api.schemas`` re-export them).
"""

from __future__ import annotations

from enum import StrEnum


class Layout(StrEnum):
    """How the measured units are laid out on the slide."""

    VISIUM = "visium"
    VISIUM_HD = "visium_hd"
    GENERIC = "generic"


class Unit(StrEnum):
    """What one measured unit (a row of spots.csv) is."""

    SPOT = "spot"
    BIN = "bin"
    CELL = "cell"
    CAPTURE_UNIT = "unit"  # a generic layout's unit of unknown size


class JobStage(StrEnum):
    """The stage a job is in: validating its input, analyzing, reporting."""

    VALIDATING = "validating"
    ANALYZING = "analyzing"
    REPORTING = "reporting"


class JobState(StrEnum):
    """The state of a job: queued, running, then succeeded, failed or canceled (terminal)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class Phase(StrEnum):
    """The half of a job a worker runs: the analysis (validating, analyzing) or the report.

    Each phase has its own task and queue; a job's phase follows from its stage.
    """

    ANALYSIS = "analysis"
    REPORT = "report"

    @classmethod
    def of_stage(cls, stage: str) -> Phase:
        """The phase a job in ``stage`` is queued for."""
        return cls.REPORT if stage == JobStage.REPORTING else cls.ANALYSIS


TERMINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)

__all__ = ["TERMINAL_STATES", "JobStage", "JobState", "Layout", "Phase", "Unit"]
