"""The report as a pathologist reads it: one document model, rendered to HTML, Markdown and PDF.

:func:`build_document` turns ``report.json`` (narrative, claim check, provenance) and the
analysis documents into a plain structure: a header, an impression, findings by topic
(each with its figure), limitations, methods and an appendix. Every quantity has one
source (``analysis.json`` where it holds the full-precision value, else ``features.json``),
is written once, in plain words with units; a value that does not apply is shown as
"n/a" with its reason and nothing empty is shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat, SupportsIndex

from core.features import FeaturesRecord
from core.jsonable import JSONObject, as_object
from core.report.claims import domain_enrichment
from core.report.report_json import CheckedSentence, ReportDocument
from core.results import AnalysisRecord

if TYPE_CHECKING:
    from core.report.signoff import Signoff

TITLE = "Spatial transcriptomics pathology report"
STATUS = "Preliminary (research use only, not for diagnosis)"
RESEARCH_USE = (
    "Research use only. Not a diagnosis: produced by an automated analysis; a "
    "qualified pathologist must review the tissue itself."
)
ENRICHED_MIN = 0.05  # lineage share at least 5 points above the rest of the section
LOW_CONFIDENCE_WARN = 0.5


@dataclass
class Figure:
    """A numbered figure with what it shows and how to read it."""

    file: str
    title: str
    caption: str
    number: int = 0
    data: bytes | None = None


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Finding:
    """One topic of the findings: plain sentences, the checked narrative, its figures."""

    id: str
    title: str
    paragraphs: list[str]
    facts: list[tuple[str, str]] = field(default_factory=list)
    narrative: str = ""
    figures: list[Figure] = field(default_factory=list)


@dataclass
class Document:
    title: str
    header: list[tuple[str, str]]
    impression: list[str]
    narrative_label: str
    findings: list[Finding]
    limitations: list[str]
    methods: list[str]
    tables: list[Table]
    removed: list[CheckedSentence]
    claim_counts: dict[str, int]
    provenance: list[tuple[str, str]]
    extra_figures: list[Figure]
    research_use: str = RESEARCH_USE
    # the sign-off block (status, who signed and when, addenda); empty for a report as made
    status_lines: list[str] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        """Every figure in citation order."""
        return [f for fd in self.findings for f in fd.figures] + self.extra_figures


# --------------------------------------------------------------------------- formatting
def _float(x: object) -> float | None:
    """``float(x)``, or ``None`` where ``float`` refuses ``x``."""
    if not isinstance(x, str | bytes | SupportsFloat | SupportsIndex):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def pct(x: object, digits: int = 0) -> str:
    f = _float(x)
    if f is None:
        return "n/a"
    v = f * 100
    if 0 < v < 1 and digits == 0:
        return "<1%"
    return f"{v:.{digits}f}%"


def num(x: object, digits: int = 0) -> str:
    v = _float(x)
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def _ranked(comp: Mapping[str, Any]) -> list[tuple[str, float]]:
    return sorted(
        (
            (str(k), float(v))
            for k, v in (comp or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ),
        key=lambda kv: -kv[1],
    )


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _sentence_list(items: list[str]) -> list[str]:
    """Items as sentences: stripped, capitalised, ending with a full stop."""
    out = []
    for s in items:
        s = " ".join(str(s).split()).rstrip(" .;,")
        if s:
            out.append(s[0].upper() + s[1:] + ".")
    return out


# --------------------------------------------------------------------------- figures
CAPTIONS: dict[str, tuple[str, str]] = {
    "qc_maps": (
        "Sample quality across the section",
        "Each panel colours every {unit} by one quality measure: total transcripts "
        "(UMIs, log10), genes detected, the mitochondrial share of transcripts (%){conf}. "
        "Brighter is higher; look for regions "
        "that differ from the rest (edges, folds, damaged tissue).",
    ),
    "domains": (
        "Spatial domains and their composition",
        "Left: each {unit} coloured by its spatial domain over the H&E image. Right: the "
        "mean estimated lineage composition of each domain (bars sum to 1), domains in "
        "the same colours as the map. Read the map for where a domain lies and the bars "
        "for what it is made of.",
    ),
    "composition": (
        "Lineage composition per domain",
        "Stacked bars: the mean estimated share of each lineage in the {unit}s of "
        "each domain; taller segments are larger shares.",
    ),
    "lineages": (
        "Dominant lineage per {unit}",
        "Each {unit} coloured by the lineage with the highest estimated share; the same "
        "lineage colours are used in every figure.",
    ),
    "cell_types": (
        "Dominant cell type per {unit}",
        "Each {unit} coloured by the cell type with the highest score; shades of a "
        "lineage's colour mark the cell types of that lineage.",
    ),
    "nhood_enrichment": (
        "Which cell types sit next to each other",
        "Neighbourhood enrichment z-scores between cell types: red means the "
        "two types are neighbours more often than by chance, blue less often; "
        "values beyond about 2 in either direction are notable.",
    ),
    "spatially_variable_genes": (
        "Genes with the strongest spatial pattern",
        "Expression of the genes with the highest spatial "
        "autocorrelation (Moran's I, in each title); brighter is higher "
        "expression. These genes outline the section's structure.",
    ),
}
FIGURE_TOPIC = {
    "qc_maps": "quality",
    "domains": "architecture",
    "composition": "architecture",
    "lineages": "cells",
    "cell_types": "cells",
    "nhood_enrichment": "spatial",
    "spatially_variable_genes": "spatial",
}


def _figure(file: str, unit: str, annotated: bool = True) -> Figure:
    stem = Path(file).stem
    title, caption = CAPTIONS.get(
        stem, (stem.replace("_", " ").capitalize(), "A figure of the analysis.")
    )
    # the QC maps carry a confidence panel only where cell types were called
    conf = " and the confidence of the cell-type call" if annotated else ""
    return Figure(
        file=file, title=title.format(unit=unit), caption=caption.format(unit=unit, conf=conf)
    )


# --------------------------------------------------------------------------- claims of the analysis
def _withheld(analysis: AnalysisRecord) -> list[dict[str, Any]]:
    """Claims of the analysis that its own checks withheld (``analysis.json`` ``claims``)."""
    return [c.model_dump(mode="json") for c in analysis.withheld_claims]


def _is_withheld(withheld: list[dict[str, Any]], *words: str) -> bool:
    names = " ".join(str(c.get("name", "")).lower() for c in withheld)
    return any(w in names for w in words)


# --------------------------------------------------------------------------- the document
def _unit(features: FeaturesRecord) -> str:
    return features.unit.value


def _platform(features: FeaturesRecord, analysis: AnalysisRecord) -> str:
    p = features.platform
    layout = p.layout.value
    name = {"visium": "10x Visium", "visium_hd": "10x Visium HD"}.get(layout, layout or "n/a")
    desc = p.unit_description.replace(" um ", " µm ") or None
    if p.bin_size_um:
        desc = f"{num(p.bin_size_um)} µm bins"
    return f"{name} ({desc})" if desc else name


def _specimen(context: Mapping[str, Sequence[str]]) -> str:
    ids = [str(x) for k in ("sample_ids", "library_ids") for x in (context.get(k) or [])]
    ids = list(dict.fromkeys(ids))
    return ", ".join(ids) if ids else "n/a (the input carried no specimen identifier)"


def _quality(
    features: FeaturesRecord, analysis: AnalysisRecord, unit: str
) -> tuple[list[str], list[tuple[str, str]]]:
    fq = features.qc
    aq = analysis.qc
    qs = analysis.qc_summary
    n_in, n_kept = aq.n_spots_in, aq.n_spots_kept
    removed = (1 - n_kept / n_in) if n_in else fq.fraction_removed_by_qc

    def median(metric: str, fallback: Any = None) -> Any:
        d = qs.get(metric)
        return d.median if d is not None else fallback

    genes = median("n_genes", fq.median_genes_per_unit)
    umis = median("total_counts")
    mito = median("pct_mito", fq.median_mito_fraction)
    facts = [
        (f"{unit.capitalize()}s analysed", num(n_kept)),
        (
            "Removed by quality control",
            pct(removed, 1) if removed is not None else "n/a (not recorded)",
        ),
        (f"Median genes detected per {unit}", num(genes)),
        (
            f"Median transcripts (UMIs) per {unit}",
            num(umis) if umis is not None else "n/a (not recorded)",
        ),
        ("Median mitochondrial share of transcripts", pct(mito, 1)),
    ]
    text = (
        f"{num(n_kept)} {unit}s were analysed"
        + (f" ({pct(removed, 1)} removed by quality control)" if removed is not None else "")
        + f"; the median {unit} detected {num(genes)} genes"
        + (f" from {num(umis)} transcripts" if umis is not None else "")
        + f", with {pct(mito, 1)} of transcripts mitochondrial."
    )
    return [text], facts


def _domain_rows(
    features: FeaturesRecord, analysis: AnalysisRecord, annotated: bool
) -> list[dict[str, Any]]:
    enrich = domain_enrichment(features)
    markers_used = analysis.annotation.markers_used
    a_domains = {d.id: d for d in analysis.domains.domains}
    rows = []
    for d in features.domains:
        did = d.id
        # by value, then by name: tied lineages are always named in the same order
        up = sorted(
            ((lin, v) for lin, v in (enrich.get(did) or {}).items() if v >= ENRICHED_MIN),
            key=lambda kv: (-kv[1], kv[0]),
        )
        down = sorted(
            ((lin, v) for lin, v in (enrich.get(did) or {}).items() if v <= -ENRICHED_MIN),
            key=lambda kv: (kv[1], kv[0]),
        )
        a_dom = a_domains.get(did)
        genes = [m for m in (a_dom.markers if a_dom else []) if m.log2fc >= 1 and m.pval_adj < 0.05]
        gene_set = {m.gene for m in genes}
        programmes = sorted(
            ((ct, [g for g in gs if g in gene_set]) for ct, gs in markers_used.items()),
            key=lambda kv: -len(kv[1]),
        )
        programmes = [(ct, gs) for ct, gs in programmes if len(gs) >= 2][:2]
        rows.append(
            {
                "id": did,
                "fraction": d.fraction_of_units,
                "composition": _ranked(d.lineage_composition),
                "up": up,
                "down": down,
                "programmes": programmes,
                "top_genes": [m.gene for m in genes[:5]],
                "confidence": d.mean_confidence if annotated else None,
                "entropy": d.mean_neighbourhood_entropy if annotated else None,
                "adjacent": list(d.adjacent_domains),
            }
        )
    return rows


def _describe_domain(r: Mapping[str, Any]) -> str:
    parts = [f"{r['id']} ({pct(r['fraction'])} of the section)"]
    if r["up"]:
        parts.append(
            "enriched for "
            + _join(
                [
                    f"{lin} (+{v * 100:.0f} percentage points against the rest of the section)"
                    if i == 0
                    else f"{lin} (+{v * 100:.0f})"
                    for i, (lin, v) in enumerate(r["up"][:3])
                ]
            )
        )
    elif r["composition"]:
        parts.append(
            "close to the section's overall composition (no lineage 5 points above the rest)"
        )
    if r["down"]:
        parts.append("depleted of " + _join([lin for lin, _ in r["down"][:2]]))
    if r["programmes"]:
        parts.append(
            "expressing the marker programme of "
            + _join(
                [
                    f"{ct if ct[:2].isupper() else ct.lower()} ({', '.join(gs[:4])})"
                    for ct, gs in r["programmes"]
                ]
            )
        )
    elif r["top_genes"]:
        parts.append("top marker genes " + ", ".join(r["top_genes"][:4]))
    return parts[0] + ": " + "; ".join(parts[1:]) + "." if len(parts) > 1 else parts[0] + "."


def build_document(
    report: ReportDocument,
    analysis: AnalysisRecord,
    features: FeaturesRecord,
    context: Mapping[str, Sequence[str]] | None = None,
    out_dir: Path | None = None,
    extra_images: list[tuple[str, bytes]] | None = None,
    history: Sequence[Signoff] | None = None,
) -> Document:
    """The report's content, ready for any renderer.

    ``history``: the report's sign-offs (:class:`core.report.signoff.Signoff`), when it is
    rendered after review; the header then says the status, and ``status_lines`` the block.
    """
    context = context or {}
    unit = _unit(features)
    annotated = features.annotated
    withheld = _withheld(analysis)
    prov = report.get("provenance") or {}
    aprov: JSONObject = prov.get("analysis_provenance") or analysis.provenance.model_dump(
        mode="json"
    )
    versions = as_object(aprov.get("versions"))
    src = report.get("narrative_source") or {}
    narratives = {
        s["id"]: s.get("narrative_checked", s.get("narrative", ""))
        for s in report.get("sections") or []
    }
    if not src.get("written_by_language_model"):
        # The template restates the computed findings: showing it would state each
        # quantity twice. Its text stays in report.json and report.md's appendix.
        narratives = {}

    model = (
        f"{src.get('model')}"
        + (f" (revision {prov.get('model_revision')})" if prov.get("model_revision") else "")
        if src.get("written_by_language_model")
        else f"none: deterministic template writer ({prov.get('model_revision') or 'v1'})"
    )
    given = (prov.get("options") or {}).get("specimen_id")
    header = [
        ("Specimen", str(given) if given else _specimen(context)),
        ("Platform", _platform(features, analysis)),
        (
            "Report date",
            str(prov.get("created_at") or "n/a (not recorded)")
            .replace("T", " ")
            .replace("+00:00", " UTC"),
        ),
        ("Pipeline", f"MedGemma Spatial {versions.get('medgemma-spatial', 'n/a')}"),
        ("Narrative model", model),
        ("Report status", STATUS),
    ]
    status_block: list[str] = []
    if history is not None:
        from core.report.signoff import header_status, status_lines

        header[-1] = ("Report status", header_status(history))
        status_block = status_lines(history)

    # ---- findings
    figs = {Path(f).stem: _figure(f, unit, annotated) for f in report.get("figures") or []}
    if "domains" in figs and "composition" in figs:
        figs.pop("composition")  # the domain figure carries the composition bars beside the map
    q_text, q_facts = _quality(features, analysis, unit)
    findings = [
        Finding("quality", "Sample quality", [], q_facts, narratives.get("specimen_and_qc", ""))
    ]

    rows = _domain_rows(features, analysis, annotated)
    n_clusters = features.clusters.n_clusters
    if rows and not _is_withheld(withheld, "domain"):
        largest = max(rows, key=lambda r: float(r["fraction"] or 0))
        arch = [
            f"The section divides into {len(rows)} spatial domains (regions of similar "
            f"expression and neighbourhood); the largest is {largest['id']} "
            f"({pct(largest['fraction'])})."
        ]
        arch += (
            [_describe_domain(r) for r in rows]
            if annotated
            else ["Domains could not be characterised by lineage: cell types were not annotated."]
        )
    elif _is_withheld(withheld, "domain"):
        why = next(
            (
                str(c.get("reason") or "")
                for c in withheld
                if "domain" in str(c.get("name", "")).lower()
            ),
            "",
        )
        why = (
            why.split(": ", 1)[1]
            if why.lower().startswith("spatial domains not assessed: ")
            else why
        )
        why = why.rstrip(".").replace("it rests on", "they rest on", 1)
        arch = [
            f"Spatial domains are not reported: {why}."
            if why
            else "Spatial domains are not reported: the data cannot carry them."
        ]
    else:
        arch = ["No spatial domains were computed."]
    facts = [
        ("Expression clusters", num(n_clusters))
        if n_clusters
        else ("Expression clusters", "n/a (not computed)")
    ]
    findings.append(
        Finding(
            "architecture",
            "Tissue architecture and domains",
            arch,
            facts,
            narratives.get("tissue_architecture", ""),
        )
    )

    ann = features.annotation
    if annotated:
        comp = _ranked(features.lineage_composition)
        present = [(k, v) for k, v in comp if v > 0]
        cells = [
            (
                "Estimated lineage composition of the section: "
                + ", ".join(f"{k} {pct(v)}" for k, v in present)
                + ". "
                f"Each {unit} can hold several cells, so this is the mean estimated share "
                f"per {unit}, not a count of {unit}s by their dominant call."
            )
        ]
        conf = ann.median_confidence
        low = ann.fraction_low_confidence
        cells.append(
            f"{num(ann.n_cell_populations)} cell populations were scored; the "
            f"median confidence of a {unit}'s call is {num(conf, 2)} (0 to 1), and "
            f"{pct(low)} of {unit}s have a low-confidence call"
            + (
                " — treat cell-type statements with caution."
                if (low or 0) > LOW_CONFIDENCE_WARN
                else "."
            )
        )
    else:
        cells = [
            "Cell types were not annotated: too few genes of the marker table were found "
            "in this sample, so no cell populations or lineage composition are reported."
        ]
    cm = analysis.annotation.confidence_meaning
    if annotated and cm:
        cells.append(str(cm))
    findings.append(
        Finding(
            "cells",
            "Cell populations and composition",
            cells,
            [],
            narratives.get("cell_populations", ""),
        )
    )

    sp = features.spatial
    spatial = []
    if annotated:
        together = [f"{r.a} with {r.b} (z = {num(r.z, 1)})" for r in sp.lineage_colocalisation]
        apart = [f"{r.a} from {r.b} (z = {num(r.z, 1)})" for r in sp.lineage_segregation]
        if together:
            spatial.append(
                "Lineages found next to each other more often than by chance: "
                + "; ".join(together[:3])
                + "."
            )
        if apart:
            spatial.append("Lineages kept apart: " + "; ".join(apart[:3]) + ".")
        if not together and not apart:
            spatial.append("No lineage pair sits together or apart more than by chance.")
    else:
        spatial.append("Lineage neighbourhoods were not assessed: cell types were not annotated.")
    svg = sp.spatially_variable_genes
    top_genes = [f"{g.gene} (Moran's I {num(g.I, 2)})" for g in analysis.spatial.morans_i.top][:5]
    if svg is not None and svg.n_tested:
        spatial.append(
            f"{num(svg.n_significant_fdr05)} of {num(svg.n_tested)} "
            f"tested genes ({pct(svg.fraction_significant)}) vary in space "
            "(false discovery rate 5%)"
            + (f"; the strongest are {', '.join(top_genes)}." if top_genes else ".")
        )
    findings.append(
        Finding(
            "spatial",
            "Spatial organisation",
            spatial,
            [],
            narratives.get("spatial_organisation", ""),
        )
    )
    if narratives.get("morphology"):
        findings.append(
            Finding(
                "morphology",
                "Morphology from the H&E image",
                [
                    "The pipeline does not measure morphology; the only statement "
                    "below is the model's reading of the image."
                ],
                [],
                narratives["morphology"],
            )
        )
    if narratives.get("follow_up"):
        findings.append(
            Finding("follow_up", "Suggested follow-up", [], [], narratives["follow_up"])
        )
    other = report.get("narrative_unassigned") or {}
    other_text = other.get("text_checked", other.get("text", ""))
    if other_text and src.get("written_by_language_model"):
        findings.append(
            Finding("other", "Statements outside the report headings", [], [], other_text)
        )
    findings = [f for f in findings if f.paragraphs or f.facts or f.narrative]

    # ---- figures: beside their topic, numbered in citation order
    used = set()
    for f in findings:
        for stem, topic in FIGURE_TOPIC.items():
            if topic == f.id and stem in figs:
                f.figures.append(figs[stem])
                used.add(stem)
    extra = [fig for stem, fig in figs.items() if stem not in used]
    for name, data in extra_images or []:
        extra.append(
            Figure(
                file="",
                title=name,
                data=data,
                caption="The H&E image exactly as the model received it (cropped to "
                "the tissue and letterboxed to the model's input size).",
            )
        )
    for n, fig in enumerate([x for fd in findings for x in fd.figures] + extra, start=1):
        fig.number = n
        if fig.data is None and out_dir is not None and fig.file:
            p = Path(out_dir) / fig.file
            fig.data = p.read_bytes() if p.is_file() else None
    for fd in findings:
        fd.figures = [x for x in fd.figures if x.data is not None or out_dir is None]
        if fd.figures:
            nums = [str(x.number) for x in fd.figures]
            refs = f"Figure {nums[0]}" if len(nums) == 1 else f"Figures {_join(nums)}"
            fd.paragraphs = [*fd.paragraphs, f"See {refs}."]

    # ---- impression (computed, never written by the model)
    impression = [q_text[0]]
    if rows and annotated and not _is_withheld(withheld, "domain"):
        distinct = [r for r in rows if r["up"]]
        impression.append(
            f"{len(rows)} spatial domains"
            + (
                ": " + "; ".join(f"{r['id']} {r['up'][0][0]}-enriched" for r in distinct)
                if distinct
                else ""
            )
            + "."
        )
    elif rows:
        impression.append(f"{len(rows)} spatial domains.")
    if annotated:
        comp = _ranked(features.lineage_composition)
        if comp:
            impression.append(
                f"Most abundant lineage: {comp[0][0]} ({pct(comp[0][1])})"
                + (f", then {comp[1][0]} ({pct(comp[1][1])})" if len(comp) > 1 else "")
                + "."
            )
        if (ann.fraction_low_confidence or 0) > LOW_CONFIDENCE_WARN:
            impression.append(
                f"Cell-type calls are uncertain: {pct(ann.fraction_low_confidence)}"
                f" of {unit}s have a low-confidence call."
            )
    else:
        impression.append("Cell types could not be annotated in this sample.")

    # ---- limitations
    unc = next(
        (
            as_object(s.get("computed"))
            for s in report.get("sections") or []
            if s.get("id") == "uncertainty"
        ),
        {},
    )
    listed = unc.get("limitations")
    limitations = _sentence_list([str(x) for x in listed] if isinstance(listed, list) else [])
    if not limitations:
        limitations = _sentence_list(
            [
                f"Each {unit} can hold several cells; cell populations are estimates",
                "Annotation depends on the marker table; unlisted cell types are not found",
            ]
        )
    for c in withheld:
        name = str(c.get("name", "a claim")).replace("_", " ")
        reason = str(c.get("reason") or "its check did not pass").rstrip(".")
        # "spatial domains not assessed: it rests on ..." -> "it rests on ..." (said once)
        head, sep, rest = reason.partition(" not assessed: ")
        if sep and len(head.split()) <= 4:
            reason = rest
        limitations.append(f"Not assessed: {name}, because {reason}.")
    for note in (report.get("not_assessed") or {}).get("notes") or []:  # e.g. a shallow sample
        text = " ".join(str(note).split()).rstrip(".")
        if text:
            limitations.append(f"Note on the sample: {text}.")
    if narratives.get("uncertainty"):
        limitations.append(
            "The narrative's own account of uncertainty: "
            + " ".join(narratives["uncertainty"].split())
        )
    counts = dict((report.get("claim_check") or {}).get("counts") or {})
    if counts:
        limitations.append(
            f"The narrative was checked claim by claim against the computed results: "
            f"{counts.get('supported', 0)} claims supported, {counts.get('contradicted', 0)} "
            f"contradicted, {counts.get('unverifiable', 0)} could not be checked; "
            f"{counts.get('sentences_removed', 0)} sentence(s) with a contradicted claim were "
            "removed from the findings (listed in the appendix)."
        )

    # ---- methods
    params = as_object(aprov.get("parameters"))
    methods = _sentence_list(
        [
            f"Counts were filtered for quality (minimum transcripts and genes per {unit}, maximum "
            "mitochondrial share), normalised and log-transformed; the most variable genes were "
            "reduced by principal components",
            "Expression clusters came from Leiden clustering of a nearest-neighbour graph"
            + (f" (resolution {params['resolution']})" if params.get("resolution") else ""),
            "Spatial domains were found by smoothing expression over neighbouring "
            f"{unit}s and clustering; the number of domains was chosen by silhouette score and stability across "
            "subsamples (see analysis.json domains.choice)",
            "Cell types were scored from a marker-gene table; lineage composition is the mean "
            f"estimated share per {unit}",
            "Neighbourhood enrichment compares observed neighbour pairs with random permutations "
            "(z-scores); spatially variable genes are ranked by Moran's I",
            "Domain enrichment is a domain's lineage share minus that lineage's share in the rest "
            "of the section",
            f"Narrative: {src.get('label') or 'n/a'}; the model never saw the organ or the "
            "specimen identifiers (leakage gate)",
        ]
        + ([f"Random seed {params['seed']}"] if params.get("seed") is not None else [])
    )

    # ---- appendix
    tables = []
    if rows:
        tables.append(
            Table(
                "Spatial domains",
                [
                    "Domain",
                    "Share of section",
                    "Composition (estimated)",
                    "Enriched vs rest",
                    "Mean call confidence",
                    "Neighbourhood diversity",
                    "Touches",
                ],
                [
                    [
                        r["id"],
                        pct(r["fraction"]),
                        ", ".join(f"{k} {pct(v)}" for k, v in r["composition"] if v > 0)
                        or "n/a (not annotated)",
                        ", ".join(f"{k} +{pct(v)}" for k, v in r["up"]) or "none",
                        num(r["confidence"], 2)
                        if r["confidence"] is not None
                        else "n/a (not annotated)",
                        num(r["entropy"], 2) if r["entropy"] is not None else "n/a (not annotated)",
                        ", ".join(r["adjacent"]) or "none",
                    ]
                    for r in rows
                ],
                "Neighbourhood diversity is the mean Shannon entropy of cell types around each "
                f"{unit} (higher is more mixed).",
            )
        )
    pops = next(
        (
            as_object(s.get("computed")).get("populations")
            for s in report.get("sections") or []
            if s.get("id") == "cell_populations"
        ),
        None,
    )
    if isinstance(pops, list) and pops:
        tables.append(
            Table(
                f"Cell populations (dominant call per {unit})",
                ["Cell type", "Lineage", f"{unit.capitalize()}s", "Share", "Mean confidence"],
                [
                    [
                        str(p.get("cell_type")),
                        str(p.get("lineage") or "n/a"),
                        num(p.get("units")),
                        pct(p.get("fraction")),
                        num(p.get("mean_confidence"), 2)
                        if p.get("mean_confidence") is not None
                        else "n/a (no score)",
                    ]
                    for p in map(as_object, pops)
                ],
                f"Counts {unit}s by their single most likely cell type; the lineage composition in "
                f"the findings averages the estimated mix within each {unit}, so the two differ.",
            )
        )
    th = analysis.qc.thresholds
    if th:
        labels = {
            "min_counts": f"Minimum transcripts per {unit}",
            "min_genes": f"Minimum genes per {unit}",
            "max_mito_fraction": "Maximum mitochondrial share",
            "min_spots_per_gene": f"Minimum {unit}s per gene",
        }
        tables.append(
            Table(
                "Quality-control thresholds",
                ["Threshold", "Value"],
                [
                    [
                        labels.get(k, k.replace("_", " ").capitalize()),
                        pct(v, 0) if "fraction" in k else num(v, 0),
                    ]
                    for k, v in th.items()
                    if v is not None
                ],
            )
        )
    removed = [
        s
        for s in (report.get("claim_check") or {}).get("sentences") or []
        if s.get("verdict") == "contradicted"
    ]
    provenance = [
        ("Input checksum (SHA-256)", str(aprov.get("input_sha256") or "n/a (not recorded)")),
        ("Input format", str(aprov.get("input_format") or "n/a (not recorded)")),
        (
            "Analysis parameters",
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items() if v is not None)
            or "n/a (not recorded)",
        ),
        (
            "Software versions",
            ", ".join(f"{k} {v}" for k, v in versions.items()) or "n/a (not recorded)",
        ),
        ("Narrative backend", str(src.get("backend") or "n/a")),
        ("Prompt strategy", str(prov.get("prompt_strategy") or "n/a").replace("_", " ")),
        ("Prompt checksum (SHA-256)", str(prov.get("prompt_sha256") or "n/a")),
        ("Images sent to the model", num(prov.get("images_sent"))),
        (
            "Leakage gate",
            "passed"
            if (gate := prov.get("leakage_gate")) and gate.get("passed")
            else "n/a (not recorded)",
        ),
        (
            "Decoding",
            ", ".join(
                f"{str(k).replace('_', ' ')} {v}"
                for k, v in as_object(prov.get("decoding")).items()
            )
            or "n/a",
        ),
        (
            "Timings",
            ", ".join(
                f"{str(k).removesuffix('_s').replace('_', ' ')} {v} s"
                for k, v in (prov.get("timings") or {}).items()
            )
            or "n/a",
        ),
    ]
    return Document(
        TITLE,
        header,
        impression,
        str(src.get("label") or ""),
        findings,
        limitations,
        methods,
        tables,
        removed,
        counts,
        provenance,
        extra,
        status_lines=status_block,
    )


def document_json(doc: Document) -> str:
    """A compact JSON view of the document (tests and debugging)."""
    from dataclasses import asdict

    d = asdict(doc)
    for f in d["findings"]:
        for fig in f["figures"]:
            fig.pop("data", None)
    for fig in d["extra_figures"]:
        fig.pop("data", None)
    return json.dumps(d, indent=2, default=str)
