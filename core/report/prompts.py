"""Tissue-blind prompts, built only from ``features.json``.

Three strategies, chosen per run:

``guided_questions``
    A fixed series of pathology questions (architecture, cell populations, spatial
    organisation, morphology, uncertainty, follow-up), answered one by one.
``create_report``
    A structured report under fixed section headings.
``anti_parroting`` (default)
    The same headings, but the model is told to interpret rather than restate the
    numbers, and to say how certain each statement is and why.

Every prompt speaks of "human tissue" and never of an organ; the leakage gate
(:mod:`core.report.leakage`) checks it before any backend sees it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import BadOption
from core.jsonable import JSONValue

STRATEGIES = ("guided_questions", "create_report", "anti_parroting")
DEFAULT_STRATEGY = "anti_parroting"

# Report sections, in order: (id, heading). The model's narrative is split under these.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("specimen_and_qc", "Specimen and QC"),
    ("tissue_architecture", "Tissue architecture and domains"),
    ("cell_populations", "Cell populations"),
    ("spatial_organisation", "Spatial organisation"),
    ("morphology", "Morphology from the image"),
    ("uncertainty", "Uncertainty and limitations"),
    ("follow_up", "Suggested follow-up"),
)

# guided_questions: question id -> (section id, question).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "Q1",
        "tissue_architecture",
        "Tissue architecture: how is the section organised into domains, and which compartments "
        "(epithelial, stromal, vascular, immune) does each domain represent?",
    ),
    (
        "Q2",
        "cell_populations",
        "Cell populations: which lineages dominate, which are sparse, and how confident is the "
        "annotation?",
    ),
    (
        "Q3",
        "spatial_organisation",
        "Spatial organisation: which lineages sit together or apart, and is the immune infiltrate "
        "diffuse, aggregated or confined to particular domains?",
    ),
    (
        "Q4",
        "morphology",
        "Morphology: what do you see in the H&E image (glandular or solid structures, stroma, "
        "inflammation, necrosis, artefacts), and does it agree with the expression-based domains?",
    ),
    (
        "Q5",
        "uncertainty",
        "Uncertainty: which of your statements are weakly supported, and what could mislead "
        "this analysis?",
    ),
    (
        "Q6",
        "follow_up",
        "Follow-up: which additional stains, assays or analyses would resolve the main open "
        "questions?",
    ),
)

_PREAMBLE = (
    "You are assisting a pathologist with a research analysis of a section of human tissue "
    "profiled by spatial transcriptomics. The organ of origin is withheld on purpose: do not "
    "guess or name it, and describe the tissue only in general histological terms. "
    "Only aggregated, tissue-blind features are given below."
)


@dataclass(frozen=True)
class Prompt:
    """The exact text sent to a backend, its strategy and its sha256."""

    text: str
    strategy: str
    n_images: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def _pct(x: Any) -> str:
    try:
        return f"{float(x) * 100:.0f}%"
    except (TypeError, ValueError):
        return "n/a"


def _num(x: Any, digits: int = 2) -> str:
    if isinstance(x, bool) or x is None:
        return "n/a"
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if v.is_integer() and abs(v) >= 10:
        return str(int(v))
    return f"{v:.{digits}f}"


def _composition(comp: Mapping[str, Any], min_share: float = 0.0) -> str:
    items = sorted(
        ((str(k), float(v)) for k, v in comp.items() if _is_number(v)), key=lambda kv: -kv[1]
    )
    return ", ".join(f"{k} {_pct(v)}" for k, v in items if v >= min_share) or "n/a"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _pairs(rows: Any) -> str:
    if not isinstance(rows, list) or not rows:
        return "none significant"
    return "; ".join(
        f"{r.get('a')} with {r.get('b')} (z = {_num(r.get('z'), 1)})"
        for r in rows[:6]
        if isinstance(r, Mapping)
    )


def annotation_available(features: Mapping[str, JSONValue]) -> bool:
    """False when the analysis marked its cell-type annotation unavailable.

    ``features.json`` without the ``available`` flag (older output) counts as annotated.
    """
    ann = features.get("annotation")
    return not (isinstance(ann, Mapping) and ann.get("available") is False)


def describe_features(features: Mapping[str, JSONValue], n_images: int) -> str:
    """The facts block: every feature a prompt may carry, in plain sentences.

    ``features`` is read defensively (any block may be missing or of another shape in an
    older file), so the reading below takes its values as they come.
    """
    doc: Mapping[str, Any] = features
    platform = doc.get("platform") or {}
    unit = str(platform.get("unit") or "spot")
    lines: list[str] = []
    desc = platform.get("unit_description")
    lines.append(f"Measurement units: {unit}s" + (f" ({desc})." if desc else "."))
    if n_images == 0:
        lines.append(
            "Image: no H&E image is available for this section; answer from the "
            "features alone and say that the morphology could not be assessed."
        )
    elif n_images == 1:
        lines.append("Image: one H&E overview of the whole section is attached.")
    else:
        lines.append(
            f"Images: an H&E overview of the whole section, then {n_images - 1} "
            "higher-magnification views of the most distinct domains, are attached."
        )
    qc = doc.get("qc") or {}
    if qc:
        lines.append(
            f"Quality control: {_num(qc.get('units_analysed'))} {unit}s analysed; "
            f"{_pct(qc.get('fraction_removed_by_qc'))} removed by QC; median "
            f"{_num(qc.get('median_genes_per_unit'))} genes detected per {unit}; median "
            f"mitochondrial read fraction {_pct(qc.get('median_mito_fraction'))}."
        )
    ann = doc.get("annotation") or {}
    annotated = annotation_available(features)
    comp = doc.get("lineage_composition") or {}
    held = not_assessed_reasons(features)
    if not annotated:
        why = held.get("annotation") or (
            "cell-type annotation was unavailable for this sample "
            "(too few marker genes of the marker table were found)"
        )
        lines.append(
            f"Annotation: {why}, so lineage composition, per-domain "
            "lineages, annotation confidence and lineage-based spatial statistics were not "
            "computed; do not infer cell populations from their absence."
        )
    else:
        if comp:
            lines.append(f"Lineage composition (share of {unit}s): {_composition(comp)}.")
        if ann:
            lines.append(
                f"Annotation: {_num(ann.get('n_cell_populations'))} cell populations; median "
                f"confidence {_num(ann.get('median_confidence'))}; "
                f"{_pct(ann.get('fraction_low_confidence'))} of {unit}s with low confidence; "
                f"mean normalised entropy {_num(ann.get('mean_normalised_entropy'))}."
            )
    clusters = doc.get("clusters") or {}
    if clusters.get("n_clusters") is not None:
        lines.append(f"Unsupervised expression clusters: {_num(clusters.get('n_clusters'))}.")
    domains = doc.get("domains") or []
    if domains:
        alt = (doc.get("domain_count") or {}).get("close_alternative")
        lines.append(
            f"Spatial domains ({len(domains)}"
            + (f"; a division into {alt} fits the data nearly as well" if alt else "")
            + "):"
        )
        for d in domains:
            if not isinstance(d, Mapping):
                continue
            adj = ", ".join(str(a) for a in d.get("adjacent_domains") or []) or "none"
            dcomp = d.get("lineage_composition") or {}
            if annotated and dcomp:
                lineage = (
                    f"dominant lineage {d.get('dominant_lineage')} "
                    f"({_composition(dcomp, 0.05)}); mean confidence "
                    f"{_num(d.get('mean_confidence'))}; neighbourhood entropy "
                    f"{_num(d.get('mean_neighbourhood_entropy'))}; "
                )
            else:
                lineage = "lineages not annotated; "
            lines.append(
                f"- {d.get('id')}: {_pct(d.get('fraction_of_units'))} of {unit}s; "
                f"{lineage}borders {adj}."
            )
    spatial = doc.get("spatial") or {}
    het = spatial.get("heterogeneity") or {}
    if het and annotated:
        lines.append(
            f"Heterogeneity: mean neighbourhood entropy "
            f"{_num(het.get('mean_neighbourhood_entropy'))}; Simpson index "
            f"{_num(het.get('simpson_index'))}."
        )
    if annotated and "lineage_colocalisation" in spatial:
        lines.append(
            "Lineages found together more than by chance: "
            f"{_pairs(spatial.get('lineage_colocalisation'))}."
        )
    if annotated and "lineage_segregation" in spatial:
        lines.append(
            "Lineages kept apart more than by chance: "
            f"{_pairs(spatial.get('lineage_segregation'))}."
        )
    svg = spatial.get("spatially_variable_genes") or {}
    if svg:
        top = ", ".join(_num(v) for v in (svg.get("top_morans_i") or [])[:5]) or "n/a"
        lines.append(
            f"Spatially variable genes: {_num(svg.get('n_significant_fdr05'))} of "
            f"{_num(svg.get('n_tested'))} tested are significant at FDR 0.05 "
            f"({_pct(svg.get('fraction_significant'))}); highest Moran's I: {top}."
        )
    rest = [r for c, r in held.items() if annotated or c != "annotation"]  # said above
    if rest:
        lines.append(
            "Not assessed (the data cannot carry these claims; say so, and do not "
            "describe them): " + "; ".join(rest) + "."
        )
    return "\n".join(lines)


def not_assessed_reasons(features: Mapping[str, JSONValue]) -> dict[str, str]:
    """Claim -> reason for each reliability check the analysis failed (``not_assessed``)."""
    out: dict[str, str] = {}
    items = features.get("not_assessed")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("claim") and item.get("reason"):
            out[str(item["claim"])] = str(item["reason"])
    return out


def _headings() -> str:
    return "\n".join(f"## {title}" for _, title in SECTIONS)


def build_prompt(
    features: Mapping[str, JSONValue], strategy: str = DEFAULT_STRATEGY, n_images: int = 1
) -> Prompt:
    """The prompt for one strategy, built only from ``features`` (a parsed ``features.json``).

    Parameters
    ----------
    strategy
        One of :data:`STRATEGIES`.
    n_images
        Images sent with the prompt (0: text only).
    """
    if strategy not in STRATEGIES:
        raise BadOption(
            f"unknown prompt strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    facts = describe_features(features, n_images)
    if strategy == "guided_questions":
        qs = "\n".join(f"{qid}. {q}" for qid, _, q in QUESTIONS)
        task = (
            "Answer each question below in turn. Start each answer on a new line with its "
            "number (Q1, Q2, ...). Be concise and specific.\n\n" + qs
        )
    elif strategy == "create_report":
        task = (
            "Write a structured pathology-style research report about this human tissue "
            "section. Use exactly these section headings, in this order, each on its own "
            "line:\n" + _headings()
        )
    else:
        task = (
            "Write an interpretive pathology-style research report about this human tissue "
            "section. Use exactly these section headings, in this order, each on its own "
            "line:\n" + _headings() + "\n\nRules:\n"
            "- Interpret; do not restate the numbers above. Say what they mean for the tissue's "
            "organisation, and quote a number only where the interpretation depends on it.\n"
            "- After each statement, say how certain it is (high, moderate or low) and why.\n"
            "- Say plainly what the data cannot tell, and where the image and the expression "
            "features disagree.\n"
            "- Do not name or guess the organ of origin."
        )
    text = f"{_PREAMBLE}\n\nFeatures:\n{facts}\n\nTask: {task}\n"
    return Prompt(text=text, strategy=strategy, n_images=n_images)
