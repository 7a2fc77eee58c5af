"""One definition of every user-facing option, shared by the CLI, the API and the workers.

The bounds and allowed values live here once. The CLI builds :class:`AnalysisOptions` and
:class:`ReportOptions` from its arguments, the API validates a job's ``options`` with
:class:`JobOptions` (so it answers 422 for anything a worker would refuse), and a worker
rebuilds the same models from the stored job options. A value out of bounds raises
:class:`~core.errors.BadOption` (``invalid_option``) with one sentence saying what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.enums import Layout as Layout
from core.enums import Unit as Unit
from core.errors import BadOption
from core.jsonable import JSONObject


class ReportBackend(StrEnum):
    """Who writes the report's narrative."""

    TEMPLATE = "template"
    TRANSFORMERS = "transformers"
    OPENAI = "openai"


class PromptStrategy(StrEnum):
    """How the tissue-blind prompt asks for the narrative (see :mod:`core.report.prompts`)."""

    GUIDED_QUESTIONS = "guided_questions"
    CREATE_REPORT = "create_report"
    ANTI_PARROTING = "anti_parroting"


RESOLUTION_RANGE = (0.1, 2.0)
N_DOMAINS_RANGE = (2, 30)
MAX_NEW_TOKENS_RANGE = (16, 8192)
MAX_TILES = 8
BIN_SIZES = (2, 8, 16)

_Text = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")]
# a name or a local path (CLI): longer, same refusal of control characters (NUL included)
_PathOrName = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f]*$")
]


class _Options(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=True, validate_default=True
    )

    @classmethod
    def parse(cls, values: Mapping[str, object] | None = None, **kw: object) -> Self:
        """Build from a mapping, turning a validation failure into :class:`BadOption`."""
        try:
            return cls.model_validate({**(values or {}), **kw})
        except ValidationError as e:
            raise BadOption(describe_validation_error(e)) from e

    def as_dict(self) -> JSONObject:
        return self.model_dump(mode="json")


class AnalysisOptions(_Options):
    """Options of the analysis stage."""

    resolution: float = Field(
        1.0,
        ge=RESOLUTION_RANGE[0],
        le=RESOLUTION_RANGE[1],
        description="Leiden resolution, 0.1 to 2.0.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of every randomised step.")
    markers: _PathOrName | None = Field(
        None, description="Marker table: a path (CLI) or a name the server knows."
    )
    species: Literal["Hs", "Mm"] = Field(
        "Hs", description="Species rows of a PanglaoDB table to keep."
    )
    organs: list[_Text] | None = Field(
        None, max_length=50, description="Organs of a PanglaoDB table to keep (None: all)."
    )
    write_h5ad: bool = Field(False, description="Also write the annotated AnnData.")
    bin_size: Literal[2, 8, 16] | None = Field(
        None, description="Visium HD bin size to analyse (um)."
    )
    unit: Literal["cell", "bin"] | None = Field(
        None,
        description="Visium HD: analyse cells or bins (None: cells when Space Ranger segmented them).",
    )
    n_domains: int | None = Field(
        None,
        ge=N_DOMAINS_RANGE[0],
        le=N_DOMAINS_RANGE[1],
        description="Fix the number of spatial domains (None: chosen automatically).",
    )


class ReportOptions(_Options):
    """Options of the report stage."""

    backend: ReportBackend = Field(ReportBackend.TEMPLATE, description="Who writes the narrative.")
    model: _PathOrName | None = Field(
        None, description="Model id or local path (transformers), model name (openai)."
    )
    prompt_strategy: PromptStrategy = Field(
        PromptStrategy.ANTI_PARROTING, description="Prompt strategy."
    )
    max_new_tokens: int = Field(
        1024,
        ge=MAX_NEW_TOKENS_RANGE[0],
        le=MAX_NEW_TOKENS_RANGE[1],
        description="Most tokens the model may write.",
    )
    tiles: int = Field(
        0, ge=0, le=MAX_TILES, description="Extra high-magnification H&E tiles for the model."
    )
    specimen_id: _PathOrName | None = Field(
        None,
        description="The lab's specimen identifier, shown in the report header only (never in a prompt).",
    )


_JOB_ANALYSIS_FIELDS = ("resolution", "seed", "markers", "species", "organs", "n_domains")
_JOB_REPORT_FIELDS = ("prompt_strategy", "tiles", "model")
# typed as Any, as ``Field(...)`` is: a FieldInfo given as a field's default is that field
_A: dict[str, Any] = dict(AnalysisOptions.model_fields)
_R: dict[str, Any] = dict(ReportOptions.model_fields)


class JobOptions(_Options):
    """Options of a job submitted to the service.

    A subset of :class:`AnalysisOptions` and :class:`ReportOptions`; each field is the very
    ``FieldInfo`` (bounds, allowed values, description) of its stage model, so the API answers
    422 for anything a worker would refuse. ``markers`` names a table the server has.
    """

    resolution: float = _A["resolution"]
    seed: int = _A["seed"]
    markers: _PathOrName | None = _A["markers"]
    species: Literal["Hs", "Mm"] = _A["species"]
    organs: list[_Text] | None = _A["organs"]
    n_domains: int | None = _A["n_domains"]
    prompt_strategy: PromptStrategy = _R["prompt_strategy"]
    tiles: int = _R["tiles"]
    backend: ReportBackend | None = Field(
        None,
        description="Who writes the narrative (default: the server's MGS_REPORT_BACKEND); "
        "only backends in the server's MGS_REPORT_BACKENDS_ALLOWED (422 backend_not_allowed).",
    )
    model: _Text | None = Field(
        None,
        description="Model id (transformers) or served model name (openai); default: the server's. "
        "Only models in the server's MGS_REPORT_MODELS_ALLOWED (422 model_not_allowed).",
    )

    def analysis(self, **overrides: object) -> AnalysisOptions:
        """The analysis stage's options (``overrides``: what the server adds, e.g. a table's path)."""
        values = {k: getattr(self, k) for k in _JOB_ANALYSIS_FIELDS}
        return AnalysisOptions.parse({**values, **overrides})

    def report(self, default_backend: str, **overrides: object) -> ReportOptions:
        """The report stage's options; ``default_backend`` when the job names none."""
        values: dict[str, object] = {k: getattr(self, k) for k in _JOB_REPORT_FIELDS}
        values["backend"] = self.backend or default_backend
        return ReportOptions.parse({**values, **overrides})


def describe_validation_error(e: ValidationError) -> str:
    """One sentence per failing field, without echoing the rejected value."""
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "options"
        parts.append(f"{where}: {err['msg']}")
    return "invalid option: " + "; ".join(parts[:5])


__all__ = [
    "BIN_SIZES",
    "AnalysisOptions",
    "JobOptions",
    "Layout",
    "PromptStrategy",
    "ReportBackend",
    "ReportOptions",
    "Unit",
    "describe_validation_error",
]
