"""Visium HD Space Ranger output: bin sizes, per-size memory estimates, streaming aggregation.

Space Ranger writes ``binned_outputs/square_002um|008um|016um``, each with a
``filtered_feature_bc_matrix.h5`` (features x barcodes, CSC, i.e. CSR of
barcodes x features) and ``spatial/tissue_positions.parquet`` (barcode,
in_tissue, array_row, array_col, pxl_row_in_fullres, pxl_col_in_fullres).

A 2 um sample holds about 10 million bins: :func:`aggregate_bins` makes 8 or
16 um bins from it without ever holding the 2 um matrix. It reads the h5 in
chunks of barcodes (slices of ``indptr``/``indices``/``data``), maps each
2 um bin to its parent ``(array_row // f, array_col // f)`` from the parquet
read one row group at a time, and accumulates parent rows; a parent row is
written into the output arrays as soon as all of its children have been
read. Space Ranger lists barcodes in row-major order, so only a band of
about two parent rows is open at any time (any order is correct, only the
open band grows).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.arrays import unique_int, unique_int_inverse
from core.errors import (
    BadCoordinates,
    BadOption,
    CorruptFile,
    MissingCoordinates,
    OverMemoryBudget,
    UnsupportedFormat,
)
from core.io.preflight import estimate_memory_mb
from core.jsonable import JSONObject

BIN_DIR_RE = re.compile(r"^square_(\d{3})um$")
AGGREGATE_TO = (8, 16)
DEFAULT_CHUNK_NNZ = 8_000_000  # matrix values read per chunk while aggregating
POSITION_COLS = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]


@dataclass
class BinOption:
    """One bin size the sample can be analysed at, and what it would cost."""

    bin_size_um: int
    source_um: int  # the bin folder read (== bin_size_um when read as is)
    n_bins: int
    n_genes: int
    nnz: int  # exact when read as is; an upper bound when aggregated
    estimated_memory_mb: float
    fits_budget: bool = False

    @property
    def aggregated(self) -> bool:
        return self.source_um != self.bin_size_um


@dataclass
class BinChoice:
    """The bin size picked, why, and the estimate of every candidate (goes to analysis.json)."""

    bin_size_um: int
    source_um: int
    reason: str
    budget_mb: float
    options: list[BinOption] = field(default_factory=list)

    def as_dict(self) -> JSONObject:
        d = asdict(self)
        for o, src in zip(d["options"], self.options, strict=True):
            o["aggregated"] = src.aggregated
            o["estimated_memory_mb"] = round(src.estimated_memory_mb, 1)
        return d


def available_bin_sizes(hd_root: Path) -> dict[int, Path]:
    """``{bin size um: folder}`` for every ``square_XXXum`` folder holding a matrix."""
    out: dict[int, Path] = {}
    for d in sorted(hd_root.iterdir()):
        m = BIN_DIR_RE.match(d.name)
        if m and d.is_dir() and (d / "filtered_feature_bc_matrix.h5").is_file():
            out[int(m.group(1))] = d
    return out


def _h5_dims(h5: Path) -> tuple[int, int, int]:
    """(n_barcodes, n_features, nnz) from the h5 headers, without reading the matrix."""
    from core.io.preflight import _open

    with _open(h5) as f:
        if "matrix" not in f or "shape" not in f["matrix"] or "data" not in f["matrix"]:
            raise UnsupportedFormat(f"{h5} is not a 10x feature-barcode matrix")
        g = f["matrix"]
        n_feat, n_bc = (int(v) for v in g["shape"][:])
        return n_bc, n_feat, int(g["data"].shape[0])


def positions_file(spatial: Path) -> Path:
    p = spatial / "tissue_positions.parquet"
    if not p.is_file():
        raise MissingCoordinates(
            f"{spatial} has no tissue_positions.parquet (needed to aggregate HD bins)"
        )
    return p


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError on damaged files
        raise CorruptFile(f"{path.name} is not a readable parquet file: {e}") from e
    missing = [c for c in POSITION_COLS if c not in pf.schema_arrow.names]
    if missing:
        raise BadCoordinates(f"{path.name} lacks columns {missing}")
    return pf


def count_parents(positions: Path, factor: int) -> int:
    """Number of coarse bins (``factor`` x ``factor`` fine bins) holding an in-tissue fine bin."""
    pf = _parquet(positions)
    keys: list[np.ndarray] = []
    for i in range(pf.num_row_groups):
        t = pf.read_row_group(i, columns=["in_tissue", "array_row", "array_col"])
        m = t.column("in_tissue").to_numpy() > 0
        r = t.column("array_row").to_numpy()[m].astype(np.int64) // factor
        c = t.column("array_col").to_numpy()[m].astype(np.int64) // factor
        keys.append(unique_int(r * (1 << 20) + c))
    return len(unique_int(np.concatenate(keys))) if keys else 0


def bin_options(hd_root: Path, settings_budget_mb: float) -> list[BinOption]:
    """Every bin size the sample offers (read as is, or aggregated from the finest), with estimates.

    Aggregated sizes count their coarse bins exactly from the parquet (in-tissue bins only) and
    bound their non-zeros by ``min(fine nnz, n_coarse x genes)``; the estimate adds the
    aggregation's own O(fine bins) working arrays.
    """
    avail = available_bin_sizes(hd_root)
    opts: list[BinOption] = []
    for um, d in avail.items():
        n, g, nnz = _h5_dims(d / "filtered_feature_bc_matrix.h5")
        opts.append(BinOption(um, um, n, g, nnz, estimate_memory_mb(n, g, nnz)))
    if avail:
        finest = min(avail)
        fd = avail[finest]
        n_f, g_f, nnz_f = _h5_dims(fd / "filtered_feature_bc_matrix.h5")
        pos = fd / "spatial" / "tissue_positions.parquet"
        for um in AGGREGATE_TO:
            if um in avail or um <= finest or um % finest or not pos.is_file():
                continue
            n_c = count_parents(pos, um // finest)
            nnz_c = int(min(nnz_f, n_c * g_f))
            work = n_f * (32 + 48) / 2**20  # barcodes, order, parent ids, coordinates per fine bin
            opts.append(
                BinOption(um, finest, n_c, g_f, nnz_c, estimate_memory_mb(n_c, g_f, nnz_c) + work)
            )
    opts.sort(key=lambda o: o.bin_size_um)
    for o in opts:
        o.fits_budget = o.estimated_memory_mb <= settings_budget_mb
    return opts


def choose_bin_size(hd_root: Path, budget_mb: float, requested: int | None) -> BinChoice:
    """The bin size to analyse: the one requested, else the finest whose estimate fits the budget.

    Raises :class:`~core.errors.BadOption` for a size the sample can neither read nor aggregate to,
    and :class:`~core.errors.OverMemoryBudget` when no size fits.
    """
    opts = bin_options(hd_root, budget_mb)
    if not opts:
        raise UnsupportedFormat(
            f"{hd_root} holds no square_XXXum bin folders with a filtered_feature_bc_matrix.h5"
        )
    by_size: dict[int, BinOption] = {}
    for o in opts:  # prefer reading a size as is over aggregating to it
        if o.bin_size_um not in by_size or not o.aggregated:
            by_size[o.bin_size_um] = o
    table = ", ".join(
        f"{o.bin_size_um} um{' (aggregated)' if o.aggregated else ''}: "
        f"{o.n_bins:,} bins, ~{o.estimated_memory_mb:,.0f} MiB"
        for o in by_size.values()
    )
    if requested is not None:
        if requested not in by_size:
            have = sorted(available_bin_sizes(hd_root))
            raise BadOption(
                f"bin size {requested} um is not in this sample (has {have} um) and cannot be made by "
                f"aggregating its finest bins (needs a multiple of {min(have)} um with tissue_positions.parquet)"
            )
        o = by_size[requested]
        if not o.fits_budget:
            raise OverMemoryBudget(
                f"{requested} um bins need about {o.estimated_memory_mb:,.0f} MiB, over the memory budget of "
                f"{budget_mb:,.0f} MiB (MGS_MEMORY_BUDGET_MB); estimates: {table}"
            )
        how = f"aggregated from {o.source_um} um bins" if o.aggregated else "read as is"
        reason = f"{requested} um bins as requested ({how}); estimates: {table}"
        return BinChoice(requested, o.source_um, reason, budget_mb, list(by_size.values()))
    fitting = [o for o in by_size.values() if o.fits_budget]
    if not fitting:
        raise OverMemoryBudget(
            f"no bin size of this Visium HD sample fits the memory budget of {budget_mb:,.0f} MiB "
            f"(MGS_MEMORY_BUDGET_MB); estimates: {table}"
        )
    o = min(fitting, key=lambda x: x.bin_size_um)
    how = f"aggregated from {o.source_um} um bins" if o.aggregated else "read as is"
    reason = (
        f"picked {o.bin_size_um} um bins ({how}): the finest whose estimate "
        f"(~{o.estimated_memory_mb:,.0f} MiB) fits the memory budget of {budget_mb:,.0f} MiB; "
        f"estimates: {table}"
    )
    return BinChoice(o.bin_size_um, o.source_um, reason, budget_mb, list(by_size.values()))


# --------------------------------------------------------------------------- aggregation
@dataclass
class AggregatedBins:
    """Coarse bins made from fine ones: counts (CSR float32) and per-bin positions."""

    X: sp.csr_matrix
    barcodes: np.ndarray  # str
    array_row: np.ndarray
    array_col: np.ndarray
    pxl_row: np.ndarray  # mean of the children's full-res pixel rows
    pxl_col: np.ndarray
    n_children: np.ndarray
    gene_names: list[str]
    gene_ids: list[str]
    feature_types: list[str] | None
    n_fine_unplaced: int  # fine barcodes of the matrix without a position
    peak_open_nnz: int = 0  # most values held for coarse bins not yet complete (memory bound check)


def _fine_positions(
    positions: Path, order: np.ndarray, bcs: np.ndarray, n: int
) -> tuple[np.ndarray, ...]:
    """array_row/col and pixels of each matrix barcode, joined by barcode one row group at a time."""
    pf = _parquet(positions)
    row = np.full(n, -1, dtype=np.int32)
    col = np.full(n, -1, dtype=np.int32)
    prow = np.zeros(n, dtype=np.float64)
    pcol = np.zeros(n, dtype=np.float64)
    for i in range(pf.num_row_groups):
        t = pf.read_row_group(i, columns=POSITION_COLS)
        b = np.asarray(
            [v.encode() if isinstance(v, str) else b"" for v in t.column("barcode").to_pylist()],
            dtype="S",
        )
        if b.dtype.itemsize > bcs.dtype.itemsize:  # longer names cannot match: never truncate them
            fits = np.char.str_len(b) <= bcs.dtype.itemsize
            b = np.where(fits, b, b"").astype(bcs.dtype)
        else:
            fits = np.ones(len(b), dtype=bool)
        pos = np.searchsorted(bcs, b)
        pos_c = np.minimum(pos, len(bcs) - 1)
        hit = (bcs[pos_c] == b) & fits
        if not hit.any():
            continue
        j = order[pos_c[hit]]
        row[j] = t.column("array_row").to_numpy()[hit]
        col[j] = t.column("array_col").to_numpy()[hit]
        prow[j] = t.column("pxl_row_in_fullres").to_numpy()[hit]
        pcol[j] = t.column("pxl_col_in_fullres").to_numpy()[hit]
    if not (np.all(np.isfinite(prow)) and np.all(np.isfinite(pcol))):
        raise BadCoordinates(f"{positions.name} holds NaN or infinite pixel coordinates")
    if np.any(row < -1) or np.any(col < -1):
        raise BadCoordinates(f"{positions.name} holds negative array_row / array_col")
    return row, col, prow, pcol


def aggregate_bins(
    fine_dir: Path, target_um: int, chunk_nnz: int = DEFAULT_CHUNK_NNZ
) -> AggregatedBins:
    """Sum ``fine_dir``'s bins into ``target_um`` bins, streaming the matrix from the h5.

    Parameters
    ----------
    fine_dir
        A ``square_XXXum`` folder (``filtered_feature_bc_matrix.h5`` and ``spatial/``).
    target_um
        Coarse bin size; a multiple of the fine one.
    chunk_nnz
        Matrix values read per chunk; memory beyond the output grows with it and with the
        band of parent rows still open.
    """
    from core.io.hdf5_safety import open_checked

    m = BIN_DIR_RE.match(fine_dir.name)
    if not m:
        raise UnsupportedFormat(f"{fine_dir} is not a square_XXXum bin folder")
    fine_um = int(m.group(1))
    if target_um <= fine_um or target_um % fine_um:
        raise BadOption(
            f"cannot aggregate {fine_um} um bins to {target_um} um (needs a larger multiple)"
        )
    factor = target_um // fine_um
    h5 = fine_dir / "filtered_feature_bc_matrix.h5"
    positions = positions_file(fine_dir / "spatial")
    with open_checked(h5) as f:
        g = f["matrix"]
        n_feat, n_bc = (int(v) for v in g["shape"][:])
        bcs = np.asarray(g["barcodes"][:])
        if bcs.dtype.kind != "S":
            bcs = bcs.astype("S")
        if len(bcs) != n_bc:
            raise CorruptFile(f"{h5.name}: {len(bcs)} barcodes for {n_bc} matrix columns")
        feats = g["features"]
        names = [b.decode() for b in feats["name"][:]]
        ids = [b.decode() for b in feats["id"][:]] if "id" in feats else names
        ftypes = [b.decode() for b in feats["feature_type"][:]] if "feature_type" in feats else None
        order = np.argsort(bcs, kind="stable")
        sorted_bcs = bcs[order]
        del bcs
        if len(sorted_bcs) > 1 and np.any(sorted_bcs[1:] == sorted_bcs[:-1]):
            raise CorruptFile(f"{h5.name} lists a barcode twice")
        row, col, prow, pcol = _fine_positions(positions, order, sorted_bcs, n_bc)
        del order, sorted_bcs
        placed = row >= 0
        n_unplaced = int((~placed).sum())
        if not placed.any():
            raise BadCoordinates(
                "no barcode of the 2 um matrix appears in tissue_positions.parquet"
            )
        # parent of every fine bin; -1 for bins without a position (their counts are dropped)
        key = np.where(
            placed,
            (row.astype(np.int64) // factor) * (1 << 20) + col.astype(np.int64) // factor,
            -1,
        )
        del row, col
        ukeys, parent = unique_int_inverse(key[placed])
        parent_of = np.full(n_bc, -1, dtype=np.int64)
        parent_of[placed] = parent
        del key, parent
        n_par = len(ukeys)
        n_children = np.bincount(parent_of[placed], minlength=n_par).astype(np.int64)
        sum_prow = np.bincount(parent_of[placed], weights=prow[placed], minlength=n_par)
        sum_pcol = np.bincount(parent_of[placed], weights=pcol[placed], minlength=n_par)
        del prow, pcol, placed

        indptr = np.asarray(g["indptr"][:], dtype=np.int64)
        nnz_f = int(indptr[-1])
        if nnz_f != g["data"].shape[0] or len(indptr) != n_bc + 1:
            raise CorruptFile(f"{h5.name}: indptr does not match the stored values")
        # output arrays, upper-bounded by the fine nnz and shrunk at the end
        out_idx = np.empty(nnz_f, dtype=np.int32)
        out_dat = np.empty(nnz_f, dtype=np.float32)
        out_ptr = np.zeros(n_par + 1, dtype=np.int64)
        row_len = np.zeros(n_par, dtype=np.int64)
        emitted = np.zeros(n_par, dtype=bool)
        emit_order: list[np.ndarray] = []
        seen = np.zeros(n_par, dtype=np.int64)
        pending: sp.csr_matrix = sp.csr_matrix((n_par, n_feat), dtype=np.float32)
        cursor = 0
        peak_open = 0
        b0 = 0
        while b0 < n_bc:
            # a chunk of barcodes holding about chunk_nnz values (at least one barcode)
            b1 = int(np.searchsorted(indptr, indptr[b0] + max(chunk_nnz, 1), side="right")) - 1
            b1 = min(max(b1, b0 + 1), n_bc)
            s, e = int(indptr[b0]), int(indptr[b1])
            idx = np.asarray(g["indices"][s:e], dtype=np.int64)
            dat = np.asarray(g["data"][s:e], dtype=np.float32)
            if idx.size and (idx.min() < 0 or idx.max() >= n_feat):
                raise CorruptFile(f"{h5.name}: feature indices out of range [0, {n_feat})")
            par = np.repeat(parent_of[b0:b1], np.diff(indptr[b0 : b1 + 1]))
            ok = par >= 0
            chunk = sp.csr_matrix(
                (dat[ok], (par[ok], idx[ok])), shape=(n_par, n_feat), dtype=np.float32
            )
            del idx, dat, par, ok
            pending = pending + chunk
            del chunk
            peak_open = max(peak_open, pending.nnz)
            pb = parent_of[b0:b1]
            seen += np.bincount(pb[pb >= 0], minlength=n_par)
            done = np.flatnonzero((seen == n_children) & ~emitted)
            if done.size:
                block = pending[done]
                block.sum_duplicates()
                k = block.nnz
                out_idx[cursor : cursor + k] = block.indices
                out_dat[cursor : cursor + k] = block.data
                cursor += k
                row_len[done] = np.diff(block.indptr)
                emitted[done] = True
                emit_order.append(done)
                keep = np.ones(n_par, dtype=np.float32)
                keep[done] = 0
                pending = sp.csr_matrix(sp.diags(keep) @ pending)
                pending.eliminate_zeros()
            b0 = b1
    if not emitted.all():
        raise CorruptFile(f"{h5.name}: {int((~emitted).sum())} coarse bins were not completed")
    emit = np.concatenate(emit_order) if emit_order else np.zeros(0, dtype=np.int64)
    out_idx.resize(cursor, refcheck=False)
    out_dat.resize(cursor, refcheck=False)
    # rows are stored in emission order; put them in parent order (row-major) if they are not
    lens = row_len[emit]
    out_ptr[1:] = np.cumsum(lens)
    X = sp.csr_matrix((out_dat, out_idx, out_ptr), shape=(n_par, n_feat))
    if np.any(np.diff(emit) < 0):
        inv = np.empty_like(emit)
        inv[emit] = np.arange(len(emit))
        X = X[inv]
    prows = (ukeys >> 20).astype(np.int64)
    pcols = (ukeys & ((1 << 20) - 1)).astype(np.int64)
    barcodes = np.array(
        [f"s_{target_um:03d}um_{r:05d}_{c:05d}-1" for r, c in zip(prows, pcols, strict=True)]
    )
    return AggregatedBins(
        X=X,
        barcodes=barcodes,
        array_row=prows,
        array_col=pcols,
        pxl_row=sum_prow / n_children,
        pxl_col=sum_pcol / n_children,
        n_children=n_children,
        gene_names=names,
        gene_ids=ids,
        feature_types=ftypes,
        n_fine_unplaced=n_unplaced,
        peak_open_nnz=peak_open,
    )


def read_scalefactors(spatial: Path) -> JSONObject:
    p = spatial / "scalefactors_json.json"
    if not p.is_file():
        return {}
    try:
        sf = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CorruptFile(f"{p.name} is not valid JSON: {e}") from e
    return sf if isinstance(sf, dict) else {}
