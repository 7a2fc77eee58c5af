"""Marker tables: the shipped default and a PanglaoDB loader.

A :class:`MarkerTable` maps cell types to marker genes and each cell type to a
*lineage* (epithelial, stromal, endothelial, lymphoid, myeloid, neural/glial,
other). Lineages are what tissue-blind features name; cell types never leave
the analysis for a prompt.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from core.errors import BadMarkerTable, BadOption

LINEAGES = ("epithelial", "stromal", "endothelial", "lymphoid", "myeloid", "neural/glial", "other")

# PanglaoDB "organs" that are systems present in every tissue: their types are broad types
PAN_TISSUE_SYSTEMS = (
    "Immune system",
    "Connective tissue",
    "Vasculature",
    "Epithelium",
    "Smooth muscle",
    "Blood",
)

# Lineage of PanglaoDB cell types, by keyword (checked in order; first match wins).
_LINEAGE_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("endothelial", ("endothelial",)),
    (
        "lymphoid",
        (
            "t cells",
            "t helper",
            "t memory",
            "t regulatory",
            "t follicular",
            "gamma delta",
            "b cells",
            "plasma",
            "nk cells",
            "natural killer",
            "innate lymphoid",
            "nuocytes",
            "thymocytes",
            "plasmacytoid",
        ),
    ),
    (
        "myeloid",
        (
            "macrophage",
            "monocyte",
            "dendritic",
            "mast cell",
            "neutrophil",
            "basophil",
            "eosinophil",
            "kupffer",
            "microglia",
            "langerhans",
            "myeloid",
            "osteoclast",
            "megakaryocyte",
            "platelet",
        ),
    ),
    (
        "neural/glial",
        (
            "neuron",
            "astrocyte",
            "oligodendrocyte",
            "schwann",
            "glia",
            "purkinje",
            "interneuron",
            "ependymal",
            "bergmann",
            "tanycyte",
            "radial glia",
            "neuroblast",
            "retinal ganglion",
            "photoreceptor",
            "satellite glial",
            "cajal-retzius",
            "neural",
        ),
    ),
    (
        "stromal",
        (
            "fibroblast",
            "smooth muscle",
            "pericyte",
            "adipocyte",
            "stromal",
            "mesenchymal",
            "myofibroblast",
            "chondrocyte",
            "osteoblast",
            "osteocyte",
            "stellate",
            "myocyte",
            "myoblast",
            "satellite cells",
            "mesangial",
            "tendon",
            "mesothelial",
        ),
    ),
    (
        "epithelial",
        (
            "epithelial",
            "keratinocyte",
            "hepatocyte",
            "enterocyte",
            "goblet",
            "acinar",
            "ductal",
            "alveolar",
            "pneumocyte",
            "podocyte",
            "cholangiocyte",
            "luminal",
            "basal cells",
            "club",
            "ciliated",
            "tuft",
            "ionocyte",
            "paneth",
            "enteroendocrine",
            "tubular",
            "urothelial",
            "myoepithelial",
            "thyroid",
            "parietal",
            "chief cells",
            "beta cells",
            "alpha cells",
            "delta cells",
            "gamma (pp)",
            "epsilon",
            "islet",
            "loop of henle",
            "intercalated",
            "principal cells",
            "distal",
            "proximal",
            "sertoli",
            "trophoblast",
            "foveolar",
            "keratin",
            "secretory",
            "mucous",
        ),
    ),
    ("other", ("erythro", "melanocyte", "red blood", "germ", "oocyte", "spermat")),
]


def lineage_of(cell_type: str, germ_layer: str | None = None) -> str:
    """Lineage of a cell-type name (keyword match; germ layer as fallback)."""
    name = cell_type.lower()
    for lineage, words in _LINEAGE_KEYWORDS:
        # keywords match at a word start ("t cells" must not match "goblet cells")
        if any(re.search(r"(?<![a-z])" + re.escape(w), name) for w in words):
            return lineage
    if germ_layer and germ_layer.lower() == "endoderm":
        return "epithelial"
    return "other"


@dataclass(frozen=True)
class MarkerTable:
    """Cell type -> marker genes (upper-case symbols) and cell type -> lineage."""

    genes: dict[str, list[str]]
    lineage: dict[str, str]
    source: str
    organ_of_gene: dict[str, set[str]] = field(default_factory=dict)
    # cell type -> its organ (PanglaoDB); types of no organ or of a pan-tissue system are broad
    organ_of_type: dict[str, str] = field(default_factory=dict)

    @property
    def broad_types(self) -> set[str]:
        """Types found across tissues: no organ given, or a pan-tissue system (:data:`PAN_TISSUE_SYSTEMS`).

        Annotation calls a lineage's broad type first and an organ-specific type only where its
        own markers add evidence (see :func:`core.analysis.annotate.annotate`).
        """
        return {t for t in self.genes if self.organ_of_type.get(t, "") in ("", *PAN_TISSUE_SYSTEMS)}

    @property
    def cell_types(self) -> list[str]:
        return list(self.genes)

    def __post_init__(self) -> None:
        if not self.genes:
            raise BadMarkerTable(f"marker table {self.source} holds no cell types")
        for t in self.genes:
            if self.lineage.get(t) not in LINEAGES:
                raise BadMarkerTable(f"cell type {t!r} has no known lineage in {self.source}")


def load_default_markers() -> MarkerTable:
    """The marker table shipped with the package (common human tissue compartments)."""
    text = resources.files("core.markers").joinpath("default_markers.tsv").read_text()
    return _parse_simple(text.splitlines(), "default")


def _parse_simple(lines: list[str], source: str) -> MarkerTable:
    rows = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    reader = csv.DictReader(rows, delimiter="\t")
    if reader.fieldnames is None or not {"cell_type", "genes"} <= set(reader.fieldnames):
        raise BadMarkerTable(f"{source}: expected columns cell_type, lineage, genes")
    genes: dict[str, list[str]] = {}
    lineage: dict[str, str] = {}
    for row in reader:
        t = row["cell_type"].strip()
        gl = [g.strip().upper() for g in (row["genes"] or "").split(",") if g.strip()]
        if not t or not gl:
            continue
        genes.setdefault(t, [])
        genes[t] += [g for g in gl if g not in genes[t]]
        lineage[t] = (row.get("lineage") or "").strip() or lineage_of(t)
    return MarkerTable(genes=genes, lineage=lineage, source=source)


def load_panglao(
    path: str | Path,
    species: str = "Hs",
    organs: list[str] | None = None,
    canonical_only: bool = False,
    min_genes: int = 3,
) -> MarkerTable:
    """Load a PanglaoDB marker TSV.

    Parameters
    ----------
    species
        ``Hs`` (human) or ``Mm`` (mouse); rows whose ``species`` column holds it are kept.
    organs
        Keep only these organs (PanglaoDB ``organ`` column, case-insensitive); ``None`` keeps all.
    canonical_only
        Keep only rows flagged as canonical markers.
    min_genes
        Drop cell types with fewer markers than this.
    """
    path = Path(path)
    want = {o.lower() for o in organs} if organs else None
    genes: dict[str, list[str]] = {}
    lineage: dict[str, str] = {}
    organ_of_gene: dict[str, set[str]] = {}
    organ_of_type: dict[str, str] = {}
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise BadMarkerTable(f"cannot read marker table {path}: {e.strerror}") from e
    with fh:
        reader = csv.DictReader(fh, delimiter="\t")
        need = {"species", "official gene symbol", "cell type", "organ"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise BadMarkerTable(
                f"{path.name} is not a PanglaoDB table (needs columns {sorted(need)})"
            )
        for row in reader:
            if species not in (row["species"] or "").split():
                continue
            gene = (row["official gene symbol"] or "").strip().upper()
            organ = (row["organ"] or "").strip()
            if gene and organ and organ != "NA":
                organ_of_gene.setdefault(gene, set()).add(organ)
            if want is not None and organ.lower() not in want:
                continue
            if canonical_only and row.get("canonical marker") != "1":
                continue
            t = row["cell type"].strip()
            if not gene or not t:
                continue
            lst = genes.setdefault(t, [])
            if gene not in lst:
                lst.append(gene)
            lineage[t] = lineage_of(t, row.get("germ layer"))
            if organ and organ != "NA":
                organ_of_type.setdefault(t, organ)
    genes = {t: g for t, g in genes.items() if len(g) >= min_genes}
    lineage = {t: lineage[t] for t in genes}
    return MarkerTable(
        genes=genes,
        lineage=lineage,
        source=f"panglao:{path.name}",
        organ_of_gene=organ_of_gene,
        organ_of_type={t: o for t, o in organ_of_type.items() if t in genes},
    )


def load_markers(
    path: str | Path | None, species: str = "Hs", organs: list[str] | None = None
) -> MarkerTable:
    """The default table (``path=None``), a PanglaoDB TSV, or our own ``cell_type/lineage/genes`` TSV."""
    if path is None:
        return load_default_markers()
    p = Path(path)
    if not p.is_file():
        raise BadMarkerTable(f"marker table {p} does not exist")
    with p.open(encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
        while head.startswith("#"):
            head = fh.readline()
    if "official gene symbol" in head:
        return load_panglao(p, species=species, organs=organs)
    return _parse_simple(p.read_text(encoding="utf-8").splitlines(), p.name)


def marker_table_path(name: str | None, tables_dir: str | Path | None) -> str | None:
    """The path of a marker table a job names: ``None`` for the shipped default, else a table in
    ``tables_dir`` (the server's ``MGS_MARKER_TABLES_DIR``); :class:`BadOption` for any other name."""
    if not name or name == "default":
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name) or name.startswith("."):
        raise BadOption(f"marker table name {name!r} is not valid")
    if not tables_dir:
        raise BadOption(f"marker table {name!r} is not available on this server (only 'default')")
    root = Path(tables_dir)
    for cand in (root / name, root / f"{name}.tsv"):
        if cand.is_file():
            return str(cand)
    raise BadOption(f"marker table {name!r} is not available on this server")
