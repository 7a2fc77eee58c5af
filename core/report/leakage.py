"""The leakage gate: refuse any text that could tell a model which tissue it is looking at.

Every prompt is checked before it reaches any backend. A finding names what leaked,
where, and why it is forbidden:

- organ and tissue words and their adjectives (``organ_words.txt``),
- tissue-revealing cell types (``tissue_cell_types.txt``),
- genes that are markers of exactly one organ (``organ_genes.tsv``, plus the genes of a
  PanglaoDB table given at run time),
- raw counts: integers of 100 or more that are not one of the aggregated feature values,
- identifiers: sample ids, library ids, barcodes (given, and anything shaped like one),
  file paths, and every string of the input's ``obs``/``uns`` metadata
  (``leakage_context.json`` written by the analysis stage).

The word lists are data files derived from the marker table by
``core/report/data/build_lists.py``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from core.errors import PromptLeakage

if TYPE_CHECKING:
    from anndata import AnnData

    from core.report.report_json import LeakageFinding

LEAKAGE_CONTEXT_FILE = "leakage_context.json"
RAW_COUNT_MIN = 100
MIN_METADATA_CHARS = 3

# Metadata values that name the platform or a data-structure convention, not the tissue.
HARMLESS_METADATA = {
    "visium",
    "visium hd",
    "visium_hd",
    "hd",
    "gene expression",
    "hires",
    "lowres",
    "true",
    "false",
    "none",
    "nan",
    "na",
    "n/a",
    "unknown",
    "spot",
    "spots",
    "bin",
    "bins",
    "image",
    "images",
    "spatial",
    "scalefactors",
    "metadata",
    "counts",
    "raw",
    "human",
    "homo sapiens",
    "hs",
    "in_tissue",
    "array_row",
    "array_col",
    "sample",
    "sample_id",
    "library_id",
}

_BARCODE = re.compile(
    r"(?<![A-Za-z0-9])(?:[ACGTN]{12,}(?:-\d+)?|s_\d{3}um_\d{5}_\d{5}(?:-\d+)?)"
    r"(?![A-Za-z0-9])"
)
_PATH = re.compile(
    r"(?:(?<![\w/])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+[\w.@+-]*"  # /a/b, ./a/b, ~/a/b
    r"|\b[A-Za-z]:\\[^\s\"']+"  # C:\...
    r"|\b[\w.-]+\.(?:h5ad|h5|hdf5|tif|tiff|svs|ndpi|png|jpe?g|zip|tar|gz|csv|tsv|json|mtx|loom"
    r"|zarr|parquet)\b"  # file names
    r"|\b(?:file|s3|gs|https?)://\S+)",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![A-Za-z0-9_])"
    r"(\s?%|\s?percent(?![A-Za-z]))?"
)


@dataclass(frozen=True)
class Finding:
    """One reason to refuse a prompt."""

    category: str  # organ_word | cell_type | organ_gene | raw_count | identifier | path | metadata
    match: str
    start: int
    reason: str

    def describe(self) -> str:
        return f"{self.category} {self.match!r} at char {self.start}: {self.reason}"


class LeakageContextDoc(TypedDict):
    """``leakage_context.json``: the strings of one sample a model must never see."""

    metadata_strings: list[str]
    sample_ids: list[str]
    library_ids: list[str]
    barcode_examples: list[str]
    source_paths: list[str]


@dataclass(frozen=True)
class LeakageContext:
    """Strings of one sample that must never reach a model (from ``leakage_context.json``)."""

    metadata_strings: tuple[str, ...] = ()
    sample_ids: tuple[str, ...] = ()
    library_ids: tuple[str, ...] = ()
    barcode_examples: tuple[str, ...] = ()
    source_paths: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> LeakageContext:
        def strings(key: str) -> tuple[str, ...]:
            v = d.get(key) or []
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list | dict):  # a number: not a list of strings
                raise TypeError(f"{key}: {type(v).__name__!r} object is not iterable")
            return tuple(str(x) for x in v if x is not None and str(x).strip())

        return cls(
            *(
                strings(k)
                for k in (
                    "metadata_strings",
                    "sample_ids",
                    "library_ids",
                    "barcode_examples",
                    "source_paths",
                )
            )
        )

    @classmethod
    def load(cls, out_dir: Path) -> LeakageContext:
        """Read ``DIR/leakage_context.json``; an empty context when the file is absent."""
        p = Path(out_dir) / LEAKAGE_CONTEXT_FILE
        if not p.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, AttributeError) as e:
            raise PromptLeakage(
                f"{p.name} is unreadable ({e}); refusing to prompt without it"
            ) from e


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Forbidden words: organ words, tissue-revealing cell types, organ-specific genes."""

    organ_words: frozenset[str]
    cell_types: frozenset[str]
    organ_genes: Mapping[str, str] = field(default_factory=dict)  # gene -> organ

    def with_marker_genes(self, organ_of_gene: Mapping[str, Iterable[str]]) -> Lexicon:
        """Add genes that a marker table (e.g. ``MarkerTable.organ_of_gene``) puts in one organ."""
        from core.report.data.build_lists import GENERIC_ORGANS

        extra = {}
        for g, organs in organ_of_gene.items():
            os_ = set(organs)
            if len(os_) == 1 and not (os_ & GENERIC_ORGANS) and len(g) >= 2 and not g.isdigit():
                extra[g.upper()] = next(iter(os_))
        return Lexicon(self.organ_words, self.cell_types, {**extra, **self.organ_genes})

    @cached_property
    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        """Compiled (organ word, cell type, gene) patterns."""
        genes = sorted(self.organ_genes, key=len, reverse=True)
        # Upper case (human) or title case (mouse style); letters and digits bound a symbol.
        alts = "|".join(re.escape(g) for g in genes) or "(?!)"
        titled = "|".join(re.escape(g.capitalize()) for g in genes if len(g) >= 4) or "(?!)"
        gene_re = re.compile(rf"(?<![A-Za-z0-9])(?:{alts}|{titled})(?![A-Za-z0-9])")
        return _word_pattern(self.organ_words), _word_pattern(self.cell_types), gene_re


def _data_lines(name: str) -> list[str]:
    text = resources.files("core.report").joinpath("data", name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicon shipped in ``core/report/data`` (derived from PanglaoDB)."""
    genes = {}
    for ln in _data_lines("organ_genes.tsv"):
        gene, _, organ = ln.partition("\t")
        genes[gene.strip().upper()] = organ.strip()
    return Lexicon(
        frozenset(w.lower() for w in _data_lines("organ_words.txt")),
        frozenset(w.lower() for w in _data_lines("tissue_cell_types.txt")),
        genes,
    )


def _word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Letter-bounded, case-insensitive, optional plural; spaces match any separator."""
    alts = sorted({w for w in words if w}, key=len, reverse=True)
    body = "|".join(re.escape(w).replace(r"\ ", r"[\s_-]+") for w in alts)
    return re.compile(rf"(?<![a-zà-ÿ])(?:{body})(?:s|es)?(?![a-zà-ÿ])", re.IGNORECASE)


def allowed_numbers(features: object) -> set[float]:
    """Every number in a features document (the aggregated values a prompt may carry)."""
    out: set[float] = set()

    def walk(v: Any) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int | float) and math.isfinite(v):
            out.add(float(v))
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(features)
    return out


def sig_round(x: float, digits: int = 2) -> float:
    """``x`` to ``digits`` significant figures, as features.json rounds counts."""
    if x <= 0 or not math.isfinite(x):
        return 0.0
    mag = math.floor(math.log10(x)) - digits + 1
    return float(round(x / 10**mag) * 10**mag)


def is_aggregate(value: float, allowed: set[float]) -> bool:
    """A large integer in a prompt is allowed when it is a features value, or that value
    rounded as features.json rounds counts (two significant figures). Percentages are
    aggregates by their format and are not checked here."""
    return value in allowed or any(sig_round(a) == value for a in allowed if a >= RAW_COUNT_MIN)


@lru_cache(maxsize=1)
def _own_vocabulary() -> frozenset[str]:
    """Single words of the prompts' own fixed wording and the lineage names.

    A metadata value equal to one of these (an ``obs`` category "stroma", say) tells the
    model nothing the prompt's own instructions do not already say.
    """
    from core.markers import LINEAGES
    from core.report import prompts

    fixed = " ".join(
        [
            prompts._PREAMBLE,
            *(q for _, _, q in prompts.QUESTIONS),
            *(t for _, t in prompts.SECTIONS),
        ]
    )
    return frozenset(re.findall(r"[a-z/]+", fixed.lower())) | frozenset(LINEAGES)


def _identifier_strings(ctx: LeakageContext) -> list[tuple[str, str]]:
    """(string, kind) pairs to look for, longest first; paths add their file name and stem."""
    items: list[tuple[str, str]] = []
    for s in ctx.sample_ids:
        items.append((s, "sample id"))
    for s in ctx.library_ids:
        items.append((s, "library id"))
    for s in ctx.barcode_examples:
        items.append((s, "barcode"))
        items.append((s.split("-")[0], "barcode"))
    for s in ctx.source_paths:
        items.append((s, "source path"))
        name = re.split(r"[\\/]", s.rstrip("/\\"))[-1]
        items.append((name, "source file name"))
        items.append((name.split(".")[0], "source file name"))
    for s in ctx.metadata_strings:
        items.append((s, "metadata string"))
    keep = []
    seen: set[str] = set()
    for s, kind in items:
        s = s.strip()
        key = s.lower()
        if (
            len(s) < MIN_METADATA_CHARS
            or key in seen
            or key in HARMLESS_METADATA
            or (kind == "metadata string" and key in _own_vocabulary())
            or re.fullmatch(r"[\d.,:eE+-]+", s)
        ):
            continue
        seen.add(key)
        keep.append((s, kind))
    return sorted(keep, key=lambda t: len(t[0]), reverse=True)


def find_leaks(
    text: str,
    context: LeakageContext | None = None,
    features: object = None,
    lexicon: Lexicon | None = None,
) -> list[Finding]:
    """Every finding in ``text`` (empty when the text is clean).

    Parameters
    ----------
    context
        The sample's identifiers and metadata strings.
    features
        The features document the text was built from: its numbers are not raw counts.
    lexicon
        Forbidden words; the shipped lexicon when ``None``.
    """
    lex = lexicon or default_lexicon()
    ctx = context or LeakageContext()
    organ_re, cell_re, gene_re = lex.patterns
    findings: list[Finding] = []
    for m in organ_re.finditer(text):
        findings.append(
            Finding("organ_word", m.group(0), m.start(), "names an organ or tissue of origin")
        )
    for m in cell_re.finditer(text):
        findings.append(
            Finding(
                "cell_type",
                m.group(0),
                m.start(),
                "a cell type found in one organ reveals the tissue",
            )
        )
    for m in gene_re.finditer(text):
        organ = lex.organ_genes.get(m.group(0).upper(), "one organ")
        findings.append(
            Finding(
                "organ_gene", m.group(0), m.start(), f"a marker gene of {organ} only (marker table)"
            )
        )
    for s, kind in _identifier_strings(ctx):
        pat = re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])", re.IGNORECASE)
        for m in pat.finditer(text):
            cat = "metadata" if kind == "metadata string" else "identifier"
            findings.append(
                Finding(cat, m.group(0), m.start(), f"the input's {kind} identifies the sample")
            )
    for m in _BARCODE.finditer(text):
        findings.append(Finding("identifier", m.group(0), m.start(), "shaped like a barcode"))
    for m in _PATH.finditer(text):
        findings.append(Finding("path", m.group(0), m.start(), "a file path or URL"))
    allowed = allowed_numbers(features) if features is not None else set()
    for m in _NUMBER.finditer(text):
        value = float(m.group(1).replace(",", ""))
        if m.group(2) and value <= 100:
            continue  # a percentage (100% included) is an aggregate, not a count
        if m.group(0).rstrip("% percnt") != m.group(1):
            continue  # a decimal is an aggregate, not a count
        if value >= RAW_COUNT_MIN and not is_aggregate(value, allowed):
            findings.append(
                Finding(
                    "raw_count",
                    m.group(0),
                    m.start(),
                    "a large integer that is not an aggregated feature value",
                )
            )
    unique = {(f.category, f.start, f.match): f for f in findings}
    return sorted(unique.values(), key=lambda f: (f.start, f.category))


def check_prompt(
    text: str,
    context: LeakageContext | None = None,
    features: object = None,
    lexicon: Lexicon | None = None,
) -> None:
    """Raise :class:`~core.errors.PromptLeakage` listing every finding, or return quietly."""
    findings = find_leaks(text, context, features, lexicon)
    if findings:
        lines = "\n".join(f"  - {f.describe()}" for f in findings)
        raise PromptLeakage(
            f"prompt refused by the leakage gate: {len(findings)} finding(s)\n{lines}"
        )


def findings_as_dicts(findings: Iterable[Finding]) -> list[LeakageFinding]:
    """Findings as plain dicts (for JSON)."""
    return [
        {"category": f.category, "match": f.match, "start": f.start, "reason": f.reason}
        for f in findings
    ]


def lexicon_fingerprint(lex: Lexicon | None = None) -> dict[str, int]:
    """Sizes of the lexicon's lists (recorded in provenance)."""
    lex = lex or default_lexicon()
    return {
        "organ_words": len(lex.organ_words),
        "cell_types": len(lex.cell_types),
        "organ_genes": len(lex.organ_genes),
    }


def _strings_in(value: Any, out: set[str], depth: int = 0, limit: int = 5000) -> None:
    """Collect the string values of nested metadata, skipping large arrays."""
    if len(out) >= limit or depth > 8:
        return
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, bytes):
        out.add(value.decode("utf-8", "replace"))
    elif isinstance(value, Mapping):
        for v in value.values():  # keys are field names (tissue_type, layout), not data
            _strings_in(v, out, depth + 1, limit)
    elif isinstance(value, list | tuple):
        for v in value[:1000]:
            _strings_in(v, out, depth + 1, limit)
    elif hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "OUS":
        for v in list(value.ravel()[:1000]):
            _strings_in(v, out, depth + 1, limit)


def leakage_context_from_adata(
    adata: AnnData,
    source_paths: Iterable[str] = (),
    n_barcodes: int = 50,
    max_categories: int = 200,
) -> LeakageContextDoc:
    """The ``leakage_context.json`` document for an AnnData: what the gate must never pass.

    Collects the values of every text or categorical ``obs`` column with at most
    ``max_categories`` distinct values (``sample``/``library`` columns always), every string
    and key under ``uns`` (image arrays skipped), the library ids (keys of
    ``uns['spatial']``), example barcodes and the source paths.
    """
    obs = adata.obs
    metadata: set[str] = set()
    sample_ids: set[str] = set()
    for col in obs.columns:
        s = obs[col]
        if not (s.dtype == object or str(s.dtype) in ("category", "string")):
            continue
        values = s.astype(str).unique()
        is_id = any(w in str(col).lower() for w in ("sample", "library", "patient", "donor"))
        if is_id:
            sample_ids.update(values[:max_categories].tolist())
        elif len(values) <= max_categories:
            metadata.update(values.tolist())
    uns = dict(adata.uns)
    spatial = uns.get("spatial") or {}
    library_ids = [str(k) for k in spatial] if isinstance(spatial, Mapping) else []
    for k, v in uns.items():
        if k == "spatial" and isinstance(v, Mapping):
            for lib in v.values():
                if isinstance(lib, Mapping):
                    _strings_in({kk: vv for kk, vv in lib.items() if kk != "images"}, metadata)
        else:
            _strings_in({k: v}, metadata)
    return {
        "metadata_strings": sorted(metadata),
        "sample_ids": sorted(sample_ids),
        "library_ids": sorted(library_ids),
        "barcode_examples": [str(b) for b in list(obs.index[:n_barcodes])],
        "source_paths": [str(p) for p in source_paths],
    }
