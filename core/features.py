"""The contract of ``features.json``: the tissue-blind features a report prompt is built from.

:func:`core.analysis.features.tissue_blind_features` computes the document; the analysis
stage (:mod:`core.runner`) writes it through :class:`FeaturesRecord` (:meth:`FeaturesRecord.write`)
and the report stage reads it with :func:`read_features` (or :func:`load_features` for a
parsed document). The JSON Schema of the model is published as ``docs/features.schema.json``
(``python scripts/analysis_schema.py`` writes it with ``docs/analysis.schema.json``; a test
checks both match).

What a file holds is kept exactly: a section the analysis left out (a withheld claim's
statistics, ``not_assessed`` in older files) stays out when the record is written again, so
:meth:`FeaturesRecord.to_json` gives back the bytes the analysis wrote.

Versions
--------
The version is the string field ``schema``, :data:`SCHEMA_NAME` (``"mgs.features/1"``,
:data:`SCHEMA_VERSION` 1), as every features.json has carried it; a file without it is read as
version 1, any other version is refused with :class:`~core.errors.InputError`. A change that
renames, removes or retypes a field raises the version; adding an optional field does not.
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
SCHEMA_NAME: Final = "mgs.features/1"

# A JSON number as written: an integer stays an integer (``1``, not ``1.0``).
Number = int | float


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Platform(_Section):
    """The platform and what one measured unit is."""

    layout: Layout
    unit: Unit
    unit_description: str
    bin_size_um: int | None = Field(None, description="Visium HD bins: the bin size.")
    n_cells: int | None = Field(None, description="Visium HD cells: how many.")
    cells_made_by: str | None = Field(None, description="Visium HD cells: how they were made.")


class QC(_Section):
    """Quality control, counts rounded to two significant figures."""

    units_analysed: int
    fraction_removed_by_qc: Number
    median_genes_per_unit: int
    median_mito_fraction: Number


class Annotation(_Section):
    """Cell-type annotation, summarised; only ``available`` when it was withheld."""

    available: bool = Field(True, description="Absent in older files: counts as annotated.")
    n_cell_populations: int | None = None
    median_confidence: Number | None = None
    fraction_low_confidence: Number | None = None
    mean_normalised_entropy: Number | None = None


class Clusters(_Section):
    n_clusters: int


class Domain(_Section):
    """A spatial domain: its share of the section, lineage composition and neighbours."""

    id: str = Field(description="D1, D2, ...")
    fraction_of_units: Number
    dominant_lineage: str = Field(description="A lineage, or 'unknown' without annotation.")
    lineage_composition: dict[str, Number]
    mean_confidence: Number | None = Field(None, description="Absent when annotation was withheld.")
    mean_neighbourhood_entropy: Number
    adjacent_domains: list[str]


class DomainCount(_Section):
    """How many domains were chosen (empty when domains were withheld)."""

    chosen: int | None = None
    close_alternative: int | None = None


class LineagePair(_Section):
    """Two lineages and their neighbourhood-enrichment z-score."""

    a: str
    b: str
    z: Number


class Heterogeneity(_Section):
    mean_neighbourhood_entropy: Number
    simpson_index: Number


class SpatiallyVariableGenes(_Section):
    """Moran's I summary: how many genes were tested and significant, the top values."""

    n_tested: int
    n_significant_fdr05: int
    fraction_significant: Number
    top_morans_i: list[Number]


class Spatial(_Section):
    heterogeneity: Heterogeneity | None = Field(
        None, description="Absent when annotation was withheld."
    )
    lineage_colocalisation: list[LineagePair]
    lineage_segregation: list[LineagePair]
    spatially_variable_genes: SpatiallyVariableGenes | None = Field(
        None, description="Absent when the spatially variable genes were withheld."
    )


class ImageFlag(_Section):
    available: bool


class NotAssessed(_Section):
    """A failed reliability check: its claim, why, the value and the threshold."""

    claim: str
    reason: str
    value: Number | None
    threshold: Number | None


class FeaturesRecord(BaseModel):
    """``features.json``: aggregated, rounded, tissue-blind statistics of one analysis."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="features.json", populate_by_name=True
    )

    schema_name: Literal["mgs.features/1"] = Field(
        SCHEMA_NAME, alias="schema", description="Version of this contract."
    )
    platform: Platform
    qc: QC
    lineage_composition: dict[str, Number] = Field(
        description="Section-wide lineage shares (empty without annotation)."
    )
    annotation: Annotation
    clusters: Clusters
    domains: list[Domain]
    domain_count: DomainCount | None = Field(None, description="Absent in older files.")
    spatial: Spatial
    image: ImageFlag
    not_assessed: list[NotAssessed] | None = Field(
        None, description="The failed reliability checks (absent in older files)."
    )

    def to_dict(self) -> dict[str, JsonValue]:
        """The JSON document, holding exactly the fields the file held (in its order)."""
        d: dict[str, JsonValue] = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        d = {"schema": d.pop("schema", SCHEMA_NAME), **d}
        platform = d.get("platform")
        if isinstance(platform, dict) and self.platform.unit == Unit.CELL:
            # the cell-level platform entry is written in its own order
            order = (
                "layout",
                "unit",
                "bin_size_um",
                "n_cells",
                "cells_made_by",
                "unit_description",
            )
            d["platform"] = {k: platform[k] for k in (*order, *platform) if k in platform}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, path: Path) -> None:
        """Write ``features.json`` at ``path``."""
        path.write_text(self.to_json(), encoding="utf-8")

    @property
    def annotated(self) -> bool:
        """Whether cell-type annotation was available (lineage statistics are present)."""
        return self.annotation.available

    @property
    def unit(self) -> Unit:
        return self.platform.unit


def load_features(data: Mapping[str, object]) -> FeaturesRecord:
    """Validate a parsed ``features.json`` document; see the module doc for versions.

    Raises
    ------
    InputError
        An unsupported version or a document that does not match the model.
    """
    doc = dict(data)
    name = doc.get("schema", SCHEMA_NAME)
    if name != SCHEMA_NAME:
        raise InputError(f"features.json has schema {name!r}; this release reads {SCHEMA_NAME!r}")
    try:
        return FeaturesRecord.model_validate(doc)
    except ValidationError as e:
        where = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
        )
        raise InputError(f"features.json does not match {SCHEMA_NAME}: {where}") from e


def read_features(path: str | Path) -> FeaturesRecord:
    """Read and validate ``features.json`` at ``path`` (or in the folder ``path``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "features.json"
    if not p.is_file():
        raise InputError(
            f"{p.parent} has no {p.name} (tissue-blind features); run the analysis first"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{p.name} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise InputError(f"{p.name} must hold a JSON object")
    return load_features(data)


def json_schema() -> dict[str, JsonValue]:
    """The JSON Schema of ``features.json`` (what docs/features.schema.json holds)."""
    schema: dict[str, JsonValue] = FeaturesRecord.model_json_schema(
        by_alias=True, mode="serialization"
    )
    schema["$id"] = "https://medgemma-spatial.dev/schemas/features.schema.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "FeaturesRecord",
    "json_schema",
    "load_features",
    "read_features",
]
