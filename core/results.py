"""The contract of ``analysis.json``: a typed, versioned model, written and read through it.

The analysis stage (:mod:`core.runner`) builds an :class:`AnalysisRecord` and writes it with
:meth:`AnalysisRecord.to_json`; the report stage and anything else reads the file with
:func:`read_analysis` (or :func:`load_analysis` for a parsed document), never by key strings.
The JSON Schema of the model is published as ``docs/analysis.schema.json``
(``python scripts/analysis_schema.py`` writes it; a test checks it matches) and described in
docs/analysis.md.

Versions
--------
``schema_version`` is an integer, :data:`SCHEMA_VERSION` (1). It also survives as the older
string field ``schema`` (``"mgs.analysis/1"``). A file without ``schema_version`` (written
before the field existed) is read as version 1 when its ``schema`` is ``"mgs.analysis/1"`` or
absent; any other version is refused with :class:`~core.errors.InputError` saying which
versions this release reads. A change that renames, removes or retypes a field raises the
version; adding an optional field does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from core.enums import Layout, Unit
from core.errors import InputError

SCHEMA_VERSION: Final = 1
SUPPORTED_VERSIONS = (1,)
SCHEMA_NAME: Final = "mgs.analysis/1"

JsonObject = dict[str, JsonValue]
# A JSON number as written: an integer stays an integer (``1``, not ``1.0``).
Number = int | float


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QC(_Section):
    """What quality control kept and removed, and why."""

    n_spots_in: int
    n_genes_in: int
    n_spots_kept: int
    n_genes_kept: int
    removed_spots: dict[str, int] = Field(description="Units removed, by reason.")
    removed_genes: dict[str, int] = Field(description="Genes removed, by reason.")
    thresholds: dict[str, Number] = Field(description="The thresholds QC applied.")
    notes: list[str] = Field(default_factory=list)


class Distribution(_Section):
    """Median and 5th/95th percentiles of a per-unit metric."""

    median: float
    p5: float
    p95: float


class HVG(_Section):
    n: int = Field(description="Highly variable genes kept.")


class PCA(_Section):
    n_comps: int
    variance_ratio: list[float]


class MarkerGene(_Section):
    """A marker gene of a group (cluster or domain) against the rest."""

    gene: str
    t: float = Field(description="Welch t statistic.")
    pval_adj: float = Field(description="Benjamini-Hochberg adjusted p-value.")
    log2fc: float
    frac_in: float = Field(description="Fraction of the group's units expressing the gene.")
    frac_out: float = Field(description="Fraction of the other units expressing the gene.")


class MajorityCall(_Section):
    """A cluster's majority cell-type call and the share of its units agreeing with it."""

    label: str
    agreement: float
    n: int


class Clusters(_Section):
    n: int
    sizes: list[int]
    markers: dict[str, list[MarkerGene]] = Field(description='Per cluster id ("0", "1", ...).')
    majority_cell_type: dict[str, MajorityCall]


class Calibration(_Section):
    """How a call's confidence was calibrated."""

    method: str
    feature: str
    a: float
    b: float
    fitted_on: str


class Annotation(_Section):
    """Cell-type annotation: what was scored, the calls, how confident."""

    marker_table: str = Field(
        description='Source of the marker table ("default", a path, "panglao:<path>").'
    )
    cell_types_scored: list[str]
    types_skipped_few_markers: dict[str, int]
    types_merged_into: dict[str, str]
    markers_used: dict[str, list[str]]
    cell_type_counts: dict[str, int]
    lineage_counts: dict[str, int]
    median_confidence: float
    confidence_meaning: str
    calibration: Calibration
    n_unassigned: int
    mean_entropy: float
    composition_estimated: bool
    available: bool
    unavailable_reason: str | None


class DomainCandidate(_Section):
    """One candidate number of domains and how it scored."""

    k: int
    silhouette: float
    stability: float
    valley: float | None = Field(
        default=None,
        description="Weakest boundary between a domain and its nearest one: density between the "
        "two peaks relative to the lower peak (0 a clear valley, 1 none; at most 0.9 admissible). "
        "Absent in files written before it was recorded.",
    )
    score: float | None = None
    chosen: bool | None = None


class DomainChoice(_Section):
    method: str
    stability: float | None
    close_alternative: int | None
    candidates: list[DomainCandidate]


class Domain(_Section):
    id: str = Field(description='"D1", "D2", ...')
    n: int
    cell_types: dict[str, float] = Field(description="Share of the domain's units per call.")
    markers: list[MarkerGene]


class Domains(_Section):
    k: int
    silhouette_by_k: dict[str, float]
    smoothing_sigma_um: float | None
    choice: DomainChoice
    domains: list[Domain]


class SpatialGraph(_Section):
    n_edges: int
    mean_degree: float


class MoranGene(_Section):
    gene: str
    I: float  # noqa: E741 (Moran's I)
    z: float
    pval_norm: float
    fdr_bh: float


class MoransI(_Section):
    n_tested: int
    n_significant_fdr05: int
    top: list[MoranGene]


class NeighbourhoodEnrichment(_Section):
    names: list[str]
    z: list[list[float | None]] = Field(
        description="z-scores, rows and columns in ``names`` order; null where undefined."
    )


class EntropySummary(_Section):
    mean: float
    median: float


class Spatial(_Section):
    graph: SpatialGraph
    morans_i: MoransI
    nhood_enrichment_celltype: NeighbourhoodEnrichment
    nhood_enrichment_lineage: NeighbourhoodEnrichment
    neighbourhood_entropy: EntropySummary


class ImageInfo(_Section):
    """The H&E image written beside the results, and how it maps to unit coordinates."""

    file: str | None = Field(description="The image file in the output folder, or null.")
    scalef: float | None = Field(description="Image pixels per full-resolution pixel.")
    spot_diameter_px: float | None
    source: str | None = Field(description="Which image of the input it is (hires, lowres...).")


class Provenance(_Section):
    """What the analysis ran on and with."""

    input_sha256: str
    input_format: str
    preflight: JsonObject | None
    notes: list[str]
    bin_size: JsonObject | None = Field(description="Visium HD: the bin size picked and why.")
    parameters: JsonObject = Field(description="The analysis parameters (AnalysisParams).")
    options: JsonObject = Field(description="The options given (core.options.AnalysisOptions).")
    seed: int
    versions: dict[str, str]
    timings_s: dict[str, float]
    command: str


class Claim(_Section):
    """A reliability check of the analysis; a failed one withholds the claims resting on it."""

    name: str
    passed: bool
    value: Number | None
    threshold: Number | None
    reason: str


class AnalysisRecord(BaseModel):
    """``analysis.json``: the computed results of one analysis, full precision."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="analysis.json", populate_by_name=True
    )

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Version of this contract.")
    schema_name: Literal["mgs.analysis/1"] = Field(
        SCHEMA_NAME, alias="schema", description="The version as the older string name."
    )
    layout: Layout
    n_spots: int = Field(description="Units analysed (after QC).")
    n_genes: int = Field(description="Genes analysed (after QC).")
    qc: QC
    qc_summary: dict[str, Distribution] = Field(
        description="Per QC metric (total_counts, n_genes, pct_mito, pct_ribo)."
    )
    hvg: HVG
    pca: PCA
    clusters: Clusters
    annotation: Annotation
    domains: Domains
    spatial: Spatial
    image: ImageInfo
    figures: list[str] = Field(description="Figure files under figures/.")
    provenance: Provenance
    unit: Unit | None = Field(
        None,
        description="Set when the unit is a cell (Visium HD cells); "
        "absent otherwise (spot for Visium, bin for Visium HD bins).",
    )
    cells: JsonObject | None = Field(None, description="Visium HD cells: how many and how made.")
    claims: list[Claim] = Field(description="Every reliability check and its outcome.")

    def to_dict(self) -> dict[str, JsonValue]:
        """The JSON document (``unit`` and ``cells`` left out where not set)."""
        d: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True)
        for k in ("unit", "cells"):
            if d.get(k) is None:
                d.pop(k, None)
        # the version first, as in every file this release writes
        return {"schema_version": d.pop("schema_version"), **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: Path) -> None:
        """Write ``analysis.json`` at ``path``."""
        path.write_text(self.to_json(), encoding="utf-8")

    @property
    def withheld_claims(self) -> list[Claim]:
        """The claims whose check failed."""
        return [c for c in self.claims if not c.passed]


def load_analysis(data: Mapping[str, object]) -> AnalysisRecord:
    """Validate a parsed ``analysis.json`` document; see the module doc for versions.

    Raises
    ------
    InputError
        An unsupported version or a document that does not match the model.
    """
    doc = dict(data)
    version = doc.get("schema_version")
    if version is None:
        name = doc.get("schema", SCHEMA_NAME)
        if name != SCHEMA_NAME:
            raise InputError(
                f"analysis.json has schema {name!r} and no schema_version; this "
                f"release reads schema_version {_supported()}"
            )
        version = 1
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise InputError(
            f"analysis.json schema_version {version!r} is not supported; this "
            f"release reads schema_version {_supported()}"
        )
    doc["schema_version"] = version
    doc.setdefault("schema", SCHEMA_NAME)
    try:
        return AnalysisRecord.model_validate(doc)
    except ValidationError as e:
        where = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
        )
        raise InputError(f"analysis.json does not match schema_version {version}: {where}") from e


def read_analysis(path: str | Path) -> AnalysisRecord:
    """Read and validate ``analysis.json`` at ``path`` (or in the folder ``path``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "analysis.json"
    if not p.is_file():
        raise InputError(f"{p.parent} has no {p.name} (computed results); run the analysis first")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{p.name} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InputError(f"{p.name} must hold a JSON object")
    return load_analysis(data)


def json_schema() -> dict[str, JsonValue]:
    """The JSON Schema of ``analysis.json`` (what docs/analysis.schema.json holds)."""
    schema: dict[str, JsonValue] = AnalysisRecord.model_json_schema(
        by_alias=True, mode="serialization"
    )
    # every file this release writes carries its version (older files lack it; see the module doc)
    required = schema.get("required")
    schema["required"] = [
        "schema_version",
        "schema",
        *(required if isinstance(required, list) else []),
    ]
    schema["$id"] = "https://medgemma-spatial.dev/schemas/analysis.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _supported() -> str:
    return ", ".join(str(v) for v in SUPPORTED_VERSIONS)


__all__ = [
    "SCHEMA_VERSION",
    "AnalysisRecord",
    "Claim",
    "json_schema",
    "load_analysis",
    "read_analysis",
]
