"""Derive the leakage gate's word lists from a PanglaoDB marker table.

Run once when the marker table changes::

    python -m core.report.data.build_lists /path/to/PanglaoDB_markers_27_Mar_2020.tsv

It writes, beside this file:

``organ_words.txt``
    Organ and tissue nouns and adjectives: the PanglaoDB ``organ`` names of
    tissue-specific organs plus a curated set of synonyms and adjectives.
``tissue_cell_types.txt``
    Names (and distinctive words of names) of cell types that PanglaoDB places in
    exactly one tissue-specific organ, plus a curated core list.
``organ_genes.tsv``
    Human marker genes that PanglaoDB lists for exactly one tissue-specific organ.

Only these derived lists are committed, never the table itself.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

# PanglaoDB organs that say nothing about where a section came from.
GENERIC_ORGANS = {
    "Immune system",
    "Connective tissue",
    "Vasculature",
    "Epithelium",
    "Blood",
    "Smooth muscle",
    "NA",
    "Zygote",
    "",
}

# Nouns and adjectives for each tissue-specific PanglaoDB organ (and a few organs the
# table lacks). The PanglaoDB organ name itself is always added too.
ORGAN_SYNONYMS: dict[str, list[str]] = {
    "Brain": [
        "brain",
        "cerebral",
        "cerebrum",
        "cerebellum",
        "cerebellar",
        "hippocampus",
        "hippocampal",
        "cortex",
        "cortical",
        "neocortex",
        "thalamus",
        "hypothalamus",
        "striatum",
        "striatal",
        "spinal cord",
        "meninges",
        "glioma",
        "glioblastoma",
        "astrocytoma",
        "white matter",
        "grey matter",
        "gray matter",
    ],
    "GI tract": [
        "colon",
        "colonic",
        "colorectal",
        "rectum",
        "rectal",
        "intestine",
        "intestinal",
        "bowel",
        "gut",
        "gastrointestinal",
        "stomach",
        "gastric",
        "duodenum",
        "duodenal",
        "ileum",
        "ileal",
        "jejunum",
        "jejunal",
        "caecum",
        "cecum",
        "caecal",
        "cecal",
        "oesophagus",
        "esophagus",
        "oesophageal",
        "esophageal",
        "appendix",
        "enteric",
        "digestive",
    ],
    "Kidney": ["kidney", "renal", "nephron", "glomerulus", "glomerular", "glomeruli"],
    "Liver": ["liver", "hepatic", "hepatocellular", "biliary", "gallbladder", "cholangiocarcinoma"],
    "Lungs": [
        "lung",
        "pulmonary",
        "bronchus",
        "bronchi",
        "bronchial",
        "bronchiole",
        "alveolus",
        "alveoli",
        "alveolar",
        "airway",
        "pleura",
        "pleural",
        "mesothelioma",
    ],
    "Skin": ["skin", "cutaneous", "dermis", "dermal", "epidermis", "epidermal", "melanoma"],
    "Pancreas": ["pancreas", "pancreatic", "islet", "islets"],
    "Heart": ["heart", "cardiac", "myocardium", "myocardial", "atrial", "ventricular"],
    "Mammary gland": ["breast", "mammary"],
    "Reproductive": [
        "prostate",
        "prostatic",
        "testis",
        "testes",
        "testicular",
        "ovary",
        "ovarian",
        "uterus",
        "uterine",
        "endometrium",
        "endometrial",
        "cervix",
        "fallopian",
        "vulva",
        "vaginal",
        "seminiferous",
    ],
    "Bone": ["bone", "osseous", "bone marrow"],
    "Eye": ["eye", "retina", "retinal", "ocular", "cornea", "corneal"],
    "Thymus": ["thymus", "thymic"],
    "Thyroid": ["thyroid"],
    "Parathyroid glands": ["parathyroid"],
    "Adrenal glands": ["adrenal"],
    "Urinary bladder": ["bladder", "urothelium", "urothelial", "urinary"],
    "Oral cavity": ["oral", "tongue", "salivary", "tonsil", "tonsillar", "gingiva"],
    "Olfactory system": ["olfactory", "nasal"],
    "Skeletal muscle": ["skeletal muscle"],
    "Placenta": ["placenta", "placental", "decidua"],
    "Embryo": ["embryo", "embryonic", "fetal", "foetal"],
    "Spleen": ["spleen", "splenic"],
    "Lymph node": ["lymph node", "lymph nodes"],
}

# Cell-type words the issue names that must be caught whatever the table says.
CURATED_CELL_WORDS = [
    "goblet",
    "enterocyte",
    "colonocyte",
    "neuron",
    "astrocyte",
    "oligodendrocyte",
    "microglia",
    "hepatocyte",
    "alveolar",
    "pneumocyte",
    "podocyte",
    "keratinocyte",
    "acinar",
    "cardiomyocyte",
    "luminal",
    "cholangiocyte",
    "paneth",
    "kupffer",
    "enteroendocrine",
    "purkinje",
    "melanocyte",
    "sebocyte",
    "trophoblast",
    "urothelial",
    "thymocyte",
]

# Words of cell-type names that are ordinary English or compartment vocabulary: a name
# with such a word is listed whole ("alpha cells"), never by that word alone.
GENERIC_WORDS = {
    "cells",
    "cell",
    "and",
    "of",
    "the",
    "type",
    "i",
    "ii",
    "stem",
    "progenitor",
    "precursor",
    "precursors",
    "epithelial",
    "smooth",
    "muscle",
    "vascular",
    "immature",
    "memory",
    "naive",
    "alpha",
    "beta",
    "delta",
    "gamma",
    "epsilon",
    "pp",
    "principal",
    "transient",
    "satellite",
    "germ",
    "follicular",
    "intercalated",
    "parietal",
    "distal",
    "proximal",
    "loop",
    "chief",
    "ganglion",
    "motor",
    "ciliated",
    "tuft",
    "anterior",
    "gland",
    "bundle",
    "fiber",
    "his",
    "red",
    "pulp",
    "undefined",
    "taste",
    "receptor",
    "mucous",
    "tubule",
    "stellate",
    "glial",
    "glia",
    "neural",
    "like",
    "endocrine",
    "fibroblasts",
    "myeloid",
    "lymphoid",
    "stromal",
    "endothelial",
    "other",
    "ductal",
    "basal",
    "crypt",
    "myoid",
    "peritubular",
    "granulosa",
    "luteal",
    "decidual",
    "pyramidal",
    "choroid",
    "plexus",
    "oxyphil",
    "microfold",
    "radial",
    "trigeminal",
    "immune",
    "peri",
    "islet",
    "macrophage",
    "monocyte",
    "dendritic",
    "lymphocyte",
    "mast",
    "plasma",
}

# Well-known organ-specific genes that the table lists under several organs or none.
CURATED_ORGAN_GENES: dict[str, str] = {
    "CDX1": "GI tract",
    "CDX2": "GI tract",
    "LGR5": "GI tract",
    "KRT20": "GI tract",
    "VIL1": "GI tract",
    "CDH17": "GI tract",
    "SATB2": "GI tract",
    "GFAP": "Brain",
    "SNAP25": "Brain",
    "SYP": "Brain",
    "MBP": "Brain",
    "RBFOX3": "Brain",
    "ESR1": "Mammary gland",
    "PGR": "Mammary gland",
    "GATA3": "Mammary gland",
    "SCGB2A2": "Mammary gland",
    "SFTPB": "Lungs",
    "SFTPA1": "Lungs",
    "NKX2-1": "Lungs",
    "NAPSA": "Lungs",
    "APOA1": "Liver",
    "KLK3": "Reproductive",
    "AR": "Reproductive",
    "NPHS1": "Kidney",
    "NPHS2": "Kidney",
    "UMOD": "Kidney",
    "KRT1": "Skin",
    "KRT10": "Skin",
    "MYH6": "Heart",
    "TNNT2": "Heart",
    "NPPA": "Heart",
    "INS": "Pancreas",
    "GCG": "Pancreas",
    "PRSS1": "Pancreas",
    "TG": "Thyroid",
}

_WORD = re.compile(r"[a-zà-ÿ]+")


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "ns")) and len(word) > 3:
        return word[:-1]
    return word


def _cell_terms(name: str) -> set[str]:
    """Terms that reveal a tissue-specific cell type: the name and its distinctive words."""
    words = [_singular(w) for w in _WORD.findall(name.lower().replace("-", " "))]
    words = [w for w in words if w not in {"cell", "cells"}]
    if not words:
        return set()
    distinctive = [w for w in words if w not in GENERIC_WORDS and len(w) > 3]
    # A name made only of ordinary words is caught as a phrase with "cell" ("alpha cell").
    terms = {" ".join(words) if distinctive else " ".join([*words, "cell"])}
    terms |= set(distinctive)
    return terms


def build(table: Path) -> dict[str, list[str]]:
    """The three lists, derived from a PanglaoDB TSV (human rows only for genes)."""
    organs_of_type: dict[str, set[str]] = defaultdict(set)
    organs_of_gene: dict[str, set[str]] = defaultdict(set)
    with table.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            organ = (row.get("organ") or "").strip()
            organs_of_type[row["cell type"].strip()].add(organ)
            if "Hs" in (row.get("species") or "").split():
                gene = (row.get("official gene symbol") or "").strip().upper()
                if gene:
                    organs_of_gene[gene].add(organ)

    organ_words: set[str] = set()
    organs = {o for os_ in organs_of_type.values() for o in os_} - GENERIC_ORGANS
    for organ in sorted(organs | set(ORGAN_SYNONYMS)):
        if organ in GENERIC_ORGANS:
            continue
        organ_words.add(organ.lower())
        organ_words.update(w.lower() for w in ORGAN_SYNONYMS.get(organ, []))
    organ_words.discard("gi tract")
    organ_words.update({"gi tract", "reproductive tract", "mammary gland", "adrenal gland"})

    cell_terms: set[str] = set(CURATED_CELL_WORDS)
    for t, os_ in organs_of_type.items():
        specific = os_ - GENERIC_ORGANS
        if len(specific) == 1 and not (os_ & GENERIC_ORGANS - {""}):
            cell_terms |= _cell_terms(t)

    specific_genes = {
        g: next(iter(os_))
        for g, os_ in organs_of_gene.items()
        if len(os_) == 1
        and not (os_ & GENERIC_ORGANS)
        and re.fullmatch(r"[A-Z0-9-]{2,}", g)
        and not g.isdigit()
    }
    specific_genes.update(CURATED_ORGAN_GENES)
    genes = sorted(f"{g}\t{o}" for g, o in specific_genes.items())
    return {
        "organ_words": sorted(organ_words),
        "tissue_cell_types": sorted(cell_terms),
        "organ_genes": genes,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m core.report.data.build_lists PANGLAODB_TSV")
    lists = build(Path(args[0]))
    header = (
        f"# Derived by core/report/data/build_lists.py from {Path(args[0]).name}; do not edit.\n"
    )
    for name, items in lists.items():
        ext = "tsv" if name == "organ_genes" else "txt"
        (HERE / f"{name}.{ext}").write_text(header + "\n".join(items) + "\n", encoding="utf-8")
        print(f"{name}.{ext}: {len(items)} entries")


if __name__ == "__main__":
    main()
