"""Issue 18, HIGH: an HDF5 file must never make us read outside itself.

Every case puts a canary file on disk (a unique string standing for /etc/passwd or
/proc/self/environ) and builds a sample that points at it with one HDF5 feature. Each is
refused with ``unsafe_file`` by the upload check, the sandboxed validation, the reader and the
CLI, and the canary's contents (and its path) appear in no error, output file or log line.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli import main
from core import errors
from core.config import Settings
from core.io.hdf5_safety import ALLOWED_FILTERS, check_hdf5_tree, harden_hdf5, plugin_loading_state
from core.io.preflight import preflight_h5ad
from core.io.readers import read_sample
from core.synth import make_sample

BUDGET = 8192
MAXPIX = 50_000_000


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("safety") / "good.h5ad"
    make_sample(n_spots=200, n_genes=300, seed=7).adata.write_h5ad(p)  # type: ignore[attr-defined]
    return p


@pytest.fixture()
def canary(tmp_path: Path) -> tuple[Path, str]:
    secret = f"CANARY-{uuid.uuid4().hex}"
    p = tmp_path / "secret-canary.txt"
    p.write_text((secret + "\n") * 64)
    return p, secret


def _external_storage(f: h5py.File, canary: Path) -> None:
    # the reported exploit: uns/x's bytes are read from the canary file
    f["uns"].create_dataset("x", (40,), "S64", external=[(str(canary), 0, h5py.h5f.UNLIMITED)])


def _external_storage_in_obs(f: h5py.File, canary: Path) -> None:
    # a string column of obs whose bytes live outside the file
    f["obs"].create_dataset("leak", (200,), "S16", external=[(str(canary), 0, 200 * 16)])


def _external_link(f: h5py.File, canary: Path) -> None:
    f["uns/evil"] = h5py.ExternalLink(str(canary), "/")


def _virtual(f: h5py.File, canary: Path) -> None:
    layout = h5py.VirtualLayout(shape=(10,), dtype="i8")
    layout[:] = h5py.VirtualSource(str(canary), "d", shape=(10,))
    f["uns"].create_virtual_dataset("virt", layout)


def _soft_link(f: h5py.File, canary: Path) -> None:
    f["uns/alias"] = h5py.SoftLink("/obsm/spatial")


def _plugin_filter(f: h5py.File, canary: Path) -> None:
    # filter 32008 (bitshuffle) is not built in: reading it would load a plugin's code
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((10,))
    dcpl.set_filter(32008, h5py.h5z.FLAG_OPTIONAL, ())
    space = h5py.h5s.create_simple((10,))
    h5py.h5d.create(f["uns"].id, b"plugged", h5py.h5t.NATIVE_INT32, space, dcpl=dcpl)


def _deep_external(f: h5py.File, canary: Path) -> None:
    g = f["uns"].create_group("a/b/c/d")
    g.create_dataset("x", (8,), "S64", external=[(str(canary), 0, 512)])


CASES: dict[str, Callable[[h5py.File, Path], None]] = {
    "external_storage": _external_storage,
    "external_storage_in_obs": _external_storage_in_obs,
    "external_link": _external_link,
    "virtual_dataset": _virtual,
    "soft_link": _soft_link,
    "plugin_filter": _plugin_filter,
    "nested_external_storage": _deep_external,
}


def _hostile(good: Path, tmp: Path, case: str, canary: Path) -> Path:
    p = tmp / f"{case}.h5ad"
    shutil.copy(good, p)
    with h5py.File(p, "a") as f:
        CASES[case](f, canary)
    return p


def _assert_no_canary(text: str, canary: Path, secret: str) -> None:
    assert secret not in text
    assert str(canary) not in text


@pytest.mark.parametrize("case", list(CASES))
def test_preflight_refuses(case: str, good: Path, tmp_path: Path, canary: tuple[Path, str]) -> None:
    path, secret = canary
    p = _hostile(good, tmp_path, case, path)
    with pytest.raises(errors.UnsafeFile) as e:
        preflight_h5ad(p, BUDGET, MAXPIX)
    _assert_no_canary(e.value.detail, path, secret)
    with pytest.raises(errors.UnsafeFile):
        read_sample(p, Settings())


@pytest.mark.parametrize("case", list(CASES))
def test_upload_sniff_refuses(
    case: str, good: Path, tmp_path: Path, canary: tuple[Path, str]
) -> None:
    from core.jobs.uploads import sniff_format

    path, secret = canary
    p = _hostile(good, tmp_path, case, path)
    with pytest.raises(errors.InputError) as e:
        sniff_format(p, 1000)
    assert e.value.code == "unsafe_file"
    _assert_no_canary(e.value.detail, path, secret)


@pytest.mark.parametrize("case", ["external_storage", "plugin_filter", "external_link"])
def test_sandboxed_validation_refuses(
    case: str, good: Path, tmp_path: Path, canary: tuple[Path, str]
) -> None:
    """The worker's validation refuses on its own, even if the upload check were bypassed."""
    from core.jobs.sandbox import validate_in_subprocess

    path, secret = canary
    p = _hostile(good, tmp_path, case, path)
    with pytest.raises(errors.InputError) as e:
        validate_in_subprocess(p, Settings())
    assert e.value.code == "unsafe_file"
    _assert_no_canary(e.value.detail, path, secret)


def test_cli_refuses_and_writes_nothing_of_the_canary(
    good: Path, tmp_path: Path, canary: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, secret = canary
    p = _hostile(good, tmp_path, "external_storage", path)
    out = tmp_path / "out"
    assert main(["analyze", str(p), "--out", str(out), "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "unsafe_file" in cap.err
    _assert_no_canary(cap.err + cap.out, path, secret)
    for f in out.rglob("*") if out.exists() else []:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_the_good_file_still_passes_and_hard_link_cycles_end(good: Path, tmp_path: Path) -> None:
    p = tmp_path / "cycle.h5ad"
    shutil.copy(good, p)
    with h5py.File(p, "a") as f:
        f["uns"].create_group("loop")
        f["uns/loop/back"] = f["uns"]  # a hard link to an ancestor: a cycle
        f["uns/again"] = f["obsm/spatial"]  # a second hard link to a dataset
    rep = preflight_h5ad(p, BUDGET, MAXPIX)
    assert rep.n_obs == 200
    with h5py.File(p, "r") as f:
        check_hdf5_tree(f)


def test_builtin_filters_pass(tmp_path: Path) -> None:
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset(
            "gz", data=np.arange(100), compression="gzip", shuffle=True, fletcher32=True
        )
        f.create_dataset("lzf", data=np.arange(100), compression="lzf")
        f.create_dataset("so", data=np.arange(100.0), scaleoffset=2)
    with h5py.File(p, "r") as f:
        check_hdf5_tree(f)
    assert {1, 2, 3, 6, 32000} <= ALLOWED_FILTERS


def test_plugin_loading_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HDF5_PLUGIN_PATH", "/tmp/evil-plugins")
    harden_hdf5()
    import os

    assert h5py.h5pl.size() == 0
    assert os.environ["HDF5_PLUGIN_PATH"] == "" and os.environ["HDF5_PLUGIN_PRELOAD"] == "::"
    assert plugin_loading_state() == 0
    assert not h5py.h5z.filter_avail(32008)


def test_spaceranger_matrix_with_external_storage(tmp_path: Path, canary: tuple[Path, str]) -> None:
    """A 10x feature-barcode matrix inside Space Ranger outs/ is checked the same way."""
    from core.io.preflight import preflight_10x_h5

    path, secret = canary
    p = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("matrix")
        g["shape"] = np.array([3, 2])
        g["data"] = np.array([1, 2], dtype=np.int32)
        g["indices"] = np.array([0, 1], dtype=np.int64)
        g["indptr"] = np.array([0, 1, 2], dtype=np.int64)
        g.create_dataset("barcodes", (2,), "S64", external=[(str(path), 0, 128)])
        g.create_group("features")["name"] = np.array([b"a", b"b", b"c"])
    with pytest.raises(errors.UnsafeFile) as e:
        preflight_10x_h5(p, BUDGET)
    _assert_no_canary(e.value.detail, path, secret)
