"""Fuzzing the validator (hypothesis): preflight and read_sample never crash or hang on bad files.

Every outcome must be a pass or an ``InputError`` with a stable code; any other exception is a
bug. Byte-level mutations of a valid .h5ad, and structurally random AnnData-shaped HDF5 files.
Bounded for CI (``MGS_FUZZ_EXAMPLES``, default 60 each); run longer locally with a bigger value.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Settings
from core.errors import InputError
from core.io.preflight import preflight_h5ad
from core.io.readers import read_sample
from core.synth import make_sample

N = int(os.environ.get("MGS_FUZZ_EXAMPLES", "60"))
CFG = Settings(memory_budget_mb=2048, max_image_pixels=10_000_000)
_TMP = Path(tempfile.mkdtemp(prefix="mgs-fuzz-"))
_GOOD = _TMP / "good.h5ad"
make_sample(n_spots=60, n_genes=80, seed=9).adata.write_h5ad(_GOOD)  # type: ignore[attr-defined]
GOOD_BYTES = _GOOD.read_bytes()


def _check(path: Path) -> None:
    try:
        preflight_h5ad(path, CFG.memory_budget_mb, CFG.max_image_pixels)
        read_sample(path, CFG)
    except InputError as e:
        assert e.code and e.detail
    # anything else propagates and fails the test


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    muts=st.lists(
        st.tuples(st.integers(0, len(GOOD_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=40
    ),
    cut=st.one_of(st.none(), st.integers(8, len(GOOD_BYTES))),
)
def test_byte_mutations(muts: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(GOOD_BYTES if cut is None else GOOD_BYTES[:cut])
    for off, val in muts:
        if off < len(data):
            data[off] = val
    p = _TMP / "mut.h5ad"
    p.write_bytes(bytes(data))
    _check(p)


@settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_obs=st.integers(0, 30),
    n_vars=st.integers(0, 30),
    declared=st.tuples(st.integers(-5, 10**12), st.integers(-5, 10**12)),
    indptr_noise=st.lists(st.integers(-50, 50), min_size=0, max_size=40),
    index_noise=st.lists(st.integers(-100, 10**6), min_size=0, max_size=40),
    values=st.sampled_from(["int", "float", "nan", "neg"]),
    xy=st.sampled_from(["ok", "nan", "inf", "1col", "missing", "wrongrows"]),
    enc=st.sampled_from(["csr_matrix", "csc_matrix", "weird", None]),
)
def test_structural(
    n_obs: int,
    n_vars: int,
    declared: tuple[int, int],
    indptr_noise: list[int],
    index_noise: list[int],
    values: str,
    xy: str,
    enc: str | None,
) -> None:
    rng = np.random.default_rng(n_obs * 31 + n_vars)
    nnz = int(n_obs * n_vars * 0.3)
    indptr = np.sort(rng.integers(0, nnz + 1, size=n_obs + 1))
    if n_obs + 1:
        indptr[0], indptr[-1] = 0, nnz
    for i, d in enumerate(indptr_noise):
        if len(indptr):
            indptr[i % len(indptr)] += d
    indices = rng.integers(0, max(n_vars, 1), size=nnz)
    for i, v in enumerate(index_noise):
        if nnz:
            indices[i % nnz] = v
    data = rng.poisson(3, size=nnz).astype(np.float32)
    if values == "float":
        data = data + 0.5
    elif values == "nan" and nnz:
        data[0] = np.nan
    elif values == "neg" and nnz:
        data[0] = -1
    p = _TMP / "struct.h5ad"
    with h5py.File(p, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        g = f.create_group("X")
        if enc is not None:
            g.attrs["encoding-type"] = enc
        g.attrs["shape"] = np.array(declared if declared[0] != -5 else (n_obs, n_vars))
        g["data"], g["indices"], g["indptr"] = data, indices, indptr
        for name, n in (("obs", n_obs), ("var", n_vars)):
            grp = f.create_group(name)
            grp.attrs["encoding-type"] = "dataframe"
            grp.attrs["encoding-version"] = "0.2.0"
            grp.attrs["_index"] = "_index"
            grp.attrs["column-order"] = np.array([], dtype="S")
            grp["_index"] = np.array([f"{name}{i}" for i in range(n)], dtype="S")
        if xy != "missing":
            coords = rng.uniform(
                0, 100, size=(n_obs + (1 if xy == "wrongrows" else 0), 1 if xy == "1col" else 2)
            )
            if xy == "nan" and coords.size:
                coords[0, 0] = np.nan
            if xy == "inf" and coords.size:
                coords[0, 0] = np.inf
            f.create_group("obsm")["spatial"] = coords
    _check(p)


def test_good_file_still_passes() -> None:
    preflight_h5ad(_GOOD, CFG.memory_budget_mb, CFG.max_image_pixels)
    assert read_sample(_GOOD, CFG).adata.n_obs == 60


@pytest.mark.parametrize("blob", [b"", b"\x89HDF\r\n\x1a\n", b"\x89HDF\r\n\x1a\n" + b"\0" * 100])
def test_tiny_blobs(blob: bytes) -> None:
    p = _TMP / "blob.h5ad"
    p.write_bytes(blob)
    _check(p)
