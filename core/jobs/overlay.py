"""Overlay data for the console's review view: where each spot lies on the job's H&E image
and what the analysis said of it (domain, cell type, lineage, QC), plus each domain's
composition. Read from the job's own artifacts (``analysis.json``, ``features.json``,
``spots.csv``); pure Python (the API image has no numpy or pandas), run off the event loop.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from typing import Any

import anyio

from core.db.models import Job
from core.jobs import service
from core.jobs.errors import NotFound
from core.jsonable import JSONObject, JSONValue
from core.storage import ObjectStore

SCHEMA = "mgs.overlay/1"
# the analysis's own reliability checks (analysis.json "claims") that stand behind each layer
LAYER_CLAIM = {"domain": "domains", "cell_type": "annotation", "lineage": "annotation"}
CATEGORICAL = {"domain": "Spatial domain", "cell_type": "Cell type", "lineage": "Lineage"}
QC = {
    "total_counts": "UMI counts",
    "n_genes": "Genes detected",
    "pct_mito": "Mitochondrial share",
    "confidence": "Annotation confidence",
}


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Text lines of a byte stream, decoded as it arrives (the CSV is never held whole)."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            yield line.decode("utf-8") + "\n"
    if rest:
        yield rest.decode("utf-8")


def _number(v: str | None) -> float | None:
    try:
        f = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return f if f is None or f == f else None  # NaN -> None


def build_overlay(
    analysis: Mapping[str, JSONValue],
    features: Mapping[str, JSONValue] | None,
    spot_rows: Iterator[str],
) -> JSONObject:
    """The overlay document (blocking: parses ``spots.csv`` row by row).

    Coordinates are in the pixels of ``image.artifact`` when the job has an image
    (full-resolution coordinates times ``scalef``), else in the sample's own units.
    Categorical layers are codes into their ``categories``; QC layers are numbers. A layer
    whose claim the analysis withheld (``analysis.json`` ``claims``: domains, annotation)
    carries the reason in ``withheld``: the console shows it only on request, with the reason.
    """
    # both documents are read defensively: a block of another shape is taken as it comes
    adoc: Mapping[str, Any] = analysis
    fdoc: Mapping[str, Any] = features or {}
    image = dict(adoc.get("image") or {})
    has_image = bool(image.get("file"))
    scale = float(image.get("scalef") or 1.0) if has_image else 1.0
    spot_px = image.get("spot_diameter_px")
    xs: list[float] = []
    ys: list[float] = []
    cats: dict[str, dict[str, int]] = {k: {} for k in CATEGORICAL}
    codes: dict[str, list[int]] = {k: [] for k in CATEGORICAL}
    qc: dict[str, list[float | None]] = {k: [] for k in QC}
    reader = csv.DictReader(spot_rows)
    fields = set(reader.fieldnames or [])
    if not {"x", "y"} <= fields:
        raise NotFound("this job's spots.csv has no coordinates", code="overlay_unavailable")
    present_cat = [k for k in CATEGORICAL if k in fields]
    present_qc = [k for k in QC if k in fields]
    for row in reader:
        x, y = _number(row.get("x")), _number(row.get("y"))
        if x is None or y is None:
            continue
        xs.append(round(x * scale, 2))
        ys.append(round(y * scale, 2))
        for k in present_cat:
            v = row.get(k) or ""
            codes[k].append(cats[k].setdefault(v, len(cats[k])))
        for k in present_qc:
            qc[k].append(_number(row.get(k)))
    withheld = {
        str(c.get("name")): str(c.get("reason") or "withheld by the analysis")
        for c in (adoc.get("claims") or [])
        if isinstance(c, Mapping) and c.get("passed") is False
    }
    layers: dict[str, Any] = {}
    for k in present_cat:
        layers[k] = {
            "kind": "categorical",
            "title": CATEGORICAL[k],
            "categories": list(cats[k]),
            "codes": codes[k],
            "withheld": withheld.get(LAYER_CLAIM[k]),
        }
    for k in present_qc:
        vals = [v for v in qc[k] if v is not None]
        layers[k] = {
            "kind": "continuous",
            "title": QC[k],
            "values": qc[k],
            "min": min(vals) if vals else None,
            "max": max(vals) if vals else None,
        }
    by_id = {
        str(d.get("id")): dict(d)
        for d in ((adoc.get("domains") or {}).get("domains") or [])
        if isinstance(d, Mapping)
    }
    for d in fdoc.get("domains") or []:
        if isinstance(d, Mapping) and str(d.get("id")) in by_id:
            by_id[str(d.get("id"))].update(
                {
                    k: d[k]
                    for k in (
                        "fraction_of_units",
                        "dominant_lineage",
                        "lineage_composition",
                        "mean_confidence",
                        "adjacent_domains",
                    )
                    if k in d
                }
            )
    return {
        "schema": SCHEMA,
        "image": {
            "artifact": image.get("file") if has_image else None,
            "scalef": scale if has_image else None,
        },
        "unit": "image_px" if has_image else "sample",
        "n_spots": len(xs),
        "spot_radius": round(float(spot_px) * scale / 2, 3) if spot_px else None,
        "x": [*xs],
        "y": [*ys],
        "layers": layers,
        "domains": list(by_id.values()),
    }


async def _json(store: ObjectStore, job: Job, name: str) -> Any:
    from core.jobs.signoff import read_all

    key = await service.artifact_key(store, job, name)
    return json.loads(await anyio.to_thread.run_sync(read_all, store, key))


async def overlay(store: ObjectStore, job: Job) -> JSONObject:
    """The overlay document of a succeeded job (404 ``overlay_unavailable`` without spots)."""
    analysis = await _json(store, job, "analysis.json")
    try:
        features = await _json(store, job, "features.json")
    except NotFound:
        features = None
    try:
        spots_key = await service.artifact_key(store, job, "spots.csv")
    except NotFound as e:
        raise NotFound("this job has no spots.csv to draw", code="overlay_unavailable") from e

    def parse() -> JSONObject:
        return build_overlay(analysis, features, _lines(store.iter_bytes(spots_key)))

    return await anyio.to_thread.run_sync(parse)


__all__ = ["SCHEMA", "build_overlay", "overlay"]
