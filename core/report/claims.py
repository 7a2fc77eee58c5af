"""Claim-by-claim check of a narrative against the computed results.

The narrative is split into sentences; each sentence yields claims of five kinds:

``number``
    every number, checked against every computed value to the precision written
    (:func:`core.report.numbers.is_verified`); a number that matches nothing is
    contradicted (the computed documents hold every quantity the analysis measured).
``domain``
    a domain id (``D3``) must be one of the section's domains.
``population``
    a lineage or cell type named must have been found in the sample (share above
    zero); a cell type the annotation never scored or found is contradicted.
``direction``
    "largest / most abundant / dominant" (which lineage or domain is largest),
    "enriched / depleted" (a lineage in a domain against the rest of the section) and
    "adjacent / borders" (two domains touching) are checked against the computed
    composition, enrichment and adjacency.

A sentence with no checkable element is one *unverifiable* claim. Each claim is
*supported*, *contradicted* or *unverifiable*; a sentence holding any contradicted
claim is struck from the report body and kept, marked, in the appendix.
"""

from __future__ import annotations

import re

from core.features import FeaturesRecord
from core.report.numbers import check_numbers
from core.report.report_json import CheckedSentence, Claim
from core.results import AnalysisRecord

SUPPORTED, CONTRADICTED, UNVERIFIABLE = "supported", "contradicted", "unverifiable"

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9*(\"'])|\n+")
_DOMAIN = re.compile(r"\b(?:domain\s+)?(D\d{1,3})\b")
_LARGEST = re.compile(
    r"\b(largest|most abundant|most common|dominan\w*|dominat\w*|"
    r"predominan\w*|main|majority)\b",
    re.IGNORECASE,
)
_ENRICHED = re.compile(r"\b(enriched|enrichment|over-?represented|concentrated)\b", re.IGNORECASE)
_DEPLETED = re.compile(r"\b(depleted|under-?represented|sparse|absent)\b", re.IGNORECASE)
_ADJACENT = re.compile(
    r"\b(adjacent|adjoin\w*|border\w*|neighbou?r\w*|abut\w*|next to)\b", re.IGNORECASE
)
_NEGATION = re.compile(r"\b(not|no|without|neither|nor)\b", re.IGNORECASE)

# Words a narrative uses for a lineage.
LINEAGE_WORDS: dict[str, tuple[str, ...]] = {
    "epithelial": ("epithelial", "epithelium"),
    "stromal": ("stromal", "stroma", "fibroblast", "fibroblasts", "smooth muscle"),
    "endothelial": ("endothelial", "endothelium", "vascular", "vessels"),
    "lymphoid": ("lymphoid", "lymphocytes", "lymphocyte", "t cells", "b cells", "plasma cells"),
    "myeloid": ("myeloid", "macrophages", "macrophage", "monocytes"),
    "neural/glial": ("neural", "glial", "neurons"),
}
# Cell types whose naming asserts their presence (checked against what was found).
CELL_TYPE_WORDS: dict[str, str] = {
    "dendritic": "Dendritic cells",
    "mast cell": "Mast cells",
    "neutrophil": "Neutrophils",
    "nk cell": "NK cells",
    "natural killer": "NK cells",
    "adipocyte": "Adipocytes",
    "pericyte": "Pericytes",
    "melanocyte": "Melanocytes",
    "erythro": "Erythroid cells",
    "plasma cell": "Plasma cells",
    "b cell": "B cells",
    "t cell": "T cells",
    "macrophage": "Macrophages",
    "fibroblast": "Fibroblasts",
    "smooth muscle": "Smooth muscle cells",
    "monocyte": "Monocytes",
    "basal": "Basal epithelial cells",
}
ENRICHMENT_MIN = 0.05
SPARSE_MAX = 0.05  # a "sparse" lineage holds under 5% of the section  # an "enriched" lineage is at least 5 percentage points above the rest


def split_sentences(text: str) -> list[str]:
    """Sentences of a narrative (markdown bullets and headings stripped)."""
    out = []
    for s in _SENTENCE.split(text or ""):
        s = re.sub(r"^\s*(?:#+|[-*]|\d+[.)])\s*", "", s).strip().strip("*").strip()
        if s:
            out.append(s)
    return out


def domain_enrichment(features: FeaturesRecord) -> dict[str, dict[str, float]]:
    """Per domain, each lineage's share minus its share in the rest of the section.

    ``rest = (overall - f * share) / (1 - f)`` with ``f`` the domain's share of units
    and ``overall`` the section-wide composition (both from ``features.json``). Lineages are
    listed by name, so the result does not depend on the hash seed.
    """
    overall = {k: float(v) for k, v in features.lineage_composition.items()}
    out: dict[str, dict[str, float]] = {}
    for d in features.domains:
        comp = d.lineage_composition
        f = float(d.fraction_of_units)
        if not comp or not overall or f >= 1.0:
            continue
        out[d.id] = {
            lin: round(
                float(comp.get(lin, 0.0))
                - max(0.0, (overall.get(lin, 0.0) - f * float(comp.get(lin, 0.0)))) / (1.0 - f),
                4,
            )
            for lin in sorted(set(overall) | set(comp))
        }
    return out


def _found_cell_types(analysis: AnalysisRecord) -> set[str]:
    return {k for k, v in analysis.annotation.cell_type_counts.items() if v}


def _lineages_in(sentence: str) -> list[str]:
    low = sentence.lower()
    first: dict[str, int] = {}
    for lin, words in LINEAGE_WORDS.items():
        for w in words:
            m = re.search(rf"\b{re.escape(w)}\b", low)
            if m:
                first[lin] = min(first.get(lin, m.start()), m.start())
    return sorted(first, key=lambda k: first[k])  # in the order the sentence names them


def check_claims(
    narrative: str, features: FeaturesRecord, analysis: AnalysisRecord, ref: list[float]
) -> list[CheckedSentence]:
    """One entry per sentence: its text, claims (kind, text, verdict, reason) and verdict."""
    domains = {d.id: d for d in features.domains}
    overall = {k: float(v) for k, v in features.lineage_composition.items()}
    enrich = domain_enrichment(features)
    found_types = _found_cell_types(analysis)
    adjacency = {k: set(d.adjacent_domains) for k, d in domains.items()}
    out: list[CheckedSentence] = []
    for sentence in split_sentences(narrative):
        claims: list[Claim] = []

        def add(
            kind: str,
            text: str,
            ok: bool | None,
            reason: str,
            claims: list[Claim] = claims,
        ) -> None:
            verdict = UNVERIFIABLE if ok is None else (SUPPORTED if ok else CONTRADICTED)
            claims.append({"kind": kind, "text": text, "verdict": verdict, "reason": reason})

        for c in check_numbers(sentence, ref):
            add(
                "number",
                c["text"],
                bool(c["verified"]),
                "matches a computed value" if c["verified"] else "matches no computed value",
            )
        named = list(dict.fromkeys(_DOMAIN.findall(sentence)))
        for did in named:
            add(
                "domain",
                did,
                did in domains,
                "a domain of this section"
                if did in domains
                else f"this section has domains {', '.join(domains) or 'none'}",
            )
        low = sentence.lower()
        lineages = _lineages_in(sentence)
        sparse = bool(_DEPLETED.search(sentence)) and not named
        for lin in lineages:
            if overall:
                share = overall.get(lin, 0.0)
                # "sparse or absent: X" claims a small share; otherwise naming X claims it is there
                ok = share < SPARSE_MAX if sparse else share > 0
                add("population", lin, ok, f"{lin} share of the section {share:.2f}")
        if found_types is not None:
            for word, ct in CELL_TYPE_WORDS.items():
                if re.search(rf"\b{re.escape(word)}", low):
                    add(
                        "population",
                        ct,
                        ct in found_types,
                        "found in the sample"
                        if ct in found_types
                        else "this cell type was not found in the sample",
                    )
        negated = bool(_NEGATION.search(sentence))
        if _LARGEST.search(sentence) and not negated:
            if named and "domain" in low and not lineages:
                largest = (
                    max(domains, key=lambda k: float(domains[k].fraction_of_units))
                    if domains
                    else None
                )
                if largest and named[0] in domains:
                    add(
                        "direction",
                        f"{named[0]} largest",
                        named[0] == largest,
                        f"the largest domain is {largest}",
                    )
            elif lineages:
                if len(named) == 1 and named[0] in domains:
                    comp = {k: float(v) for k, v in domains[named[0]].lineage_composition.items()}
                    top = max(comp, key=lambda k: comp[k]) if comp else None
                    where = f"in {named[0]}"
                else:
                    comp, top, where = (
                        overall,
                        (max(overall, key=lambda k: overall[k]) if overall else None),
                        "in the section",
                    )
                if top is not None:
                    add(
                        "direction",
                        f"{lineages[0]} largest {where}",
                        lineages[0] == top,
                        f"the largest lineage {where} is {top}",
                    )
        if (
            (_ENRICHED.search(sentence) or _DEPLETED.search(sentence))
            and named
            and lineages
            and not negated
        ):
            up = bool(_ENRICHED.search(sentence))
            for did in named:
                if did in enrich:
                    diff = enrich[did].get(lineages[0], 0.0)
                    ok = diff >= ENRICHMENT_MIN if up else diff <= -ENRICHMENT_MIN
                    add(
                        "direction",
                        f"{lineages[0]} {'enriched' if up else 'depleted'} in {did}",
                        ok,
                        f"{diff * 100:+.0f} points against the rest of the section",
                    )
        if _ADJACENT.search(sentence) and len(named) >= 2 and not negated:
            a, b = named[0], named[1]
            if a in adjacency and b in domains:
                ok = b in adjacency[a] or a in adjacency.get(b, set())
                add(
                    "direction",
                    f"{a} adjacent to {b}",
                    ok,
                    "the domains touch" if ok else "the domains do not touch",
                )
        if not claims:
            add("statement", sentence, None, "nothing in it can be checked against the results")
        verdicts = {c["verdict"] for c in claims}
        verdict = (
            CONTRADICTED
            if CONTRADICTED in verdicts
            else (SUPPORTED if SUPPORTED in verdicts else UNVERIFIABLE)
        )
        out.append({"sentence": sentence, "verdict": verdict, "claims": claims})
    return out


def summarise(checked: list[CheckedSentence]) -> dict[str, int]:
    """Counts of claims by verdict, and of sentences removed."""
    counts = {SUPPORTED: 0, CONTRADICTED: 0, UNVERIFIABLE: 0}
    for s in checked:
        for c in s["claims"]:
            counts[c["verdict"]] += 1
    counts["sentences"] = len(checked)
    counts["sentences_removed"] = sum(s["verdict"] == CONTRADICTED for s in checked)
    return counts


def strike(text: str, checked: list[CheckedSentence]) -> str:
    """``text`` without its contradicted sentences (whitespace otherwise kept)."""
    for s in checked:
        if s["verdict"] == CONTRADICTED:
            text = text.replace(s["sentence"], "", 1)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"^\s*(?:[-*]|\d+[.)])?\s*\**\s*$\n?", "", text, flags=re.MULTILINE)
    return text.strip()
