"""Item 8: a corpus of broken and hostile samples, made here, each sent as a lab would
(upload, then job). Each one gets a 4xx at upload or a failed job with a precise code and
message; the API and the workers stay up (the last sample, whose gene ids the marker table
does not know, must still be analysed: success with annotation.available == false)."""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from tests.service.conftest import start_relay, start_worker
from tests.service.helpers import client, upload


def _good(tmp: Path, **kw: Any) -> Path:
    from core.synth import make_sample

    p = tmp / "good.h5ad"
    make_sample(n_spots=300, n_genes=400, seed=5, **kw).adata.write_h5ad(p)  # type: ignore[attr-defined]
    return p


def _edit(fn: Callable[[h5py.File], None]) -> Callable[[Path], bytes]:
    def make(tmp: Path) -> bytes:
        p = _good(tmp)
        with h5py.File(p, "a") as f:
            fn(f)
        return p.read_bytes()

    return make


def _external(f: h5py.File) -> None:
    f["uns/evil"] = h5py.ExternalLink("/etc/passwd", "/")


def _external_storage(f: h5py.File) -> None:
    # issue 18 HIGH: uns/x's bytes would be read from the worker's /etc/passwd
    f["uns"].create_dataset("x", (40,), "S64", external=[("/etc/passwd", 0, h5py.h5f.UNLIMITED)])


def _external_environ(f: h5py.File) -> None:
    f["obs"].create_dataset(
        "env", (300,), "S64", external=[("/proc/self/environ", 0, h5py.h5f.UNLIMITED)]
    )


def _plugin_filter(f: h5py.File) -> None:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((10,))
    dcpl.set_filter(32008, h5py.h5z.FLAG_OPTIONAL, ())
    h5py.h5d.create(
        f["uns"].id, b"plugged", h5py.h5t.NATIVE_INT32, h5py.h5s.create_simple((10,)), dcpl=dcpl
    )


def _virtual(f: h5py.File) -> None:
    layout = h5py.VirtualLayout(shape=(10,), dtype="i8")
    layout[:] = h5py.VirtualSource("/etc/hostname", "d", shape=(10,))
    f["uns"].create_virtual_dataset("virt", layout)


def _shape(f: h5py.File) -> None:
    f["X"].attrs["shape"] = np.array([1_000_000_000, 1_000_000])


def _indptr(f: h5py.File) -> None:
    ip = f["X/indptr"][:]
    ip[5], ip[6] = ip[6], ip[5] - 1
    f["X/indptr"][:] = ip


def _indices(f: h5py.File) -> None:
    idx = f["X/indices"][:]
    idx[0] = 10_000
    f["X/indices"][:] = idx


def _coord(bad: float) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        xy = f["obsm/spatial"][:]
        xy[3, 0] = bad
        f["obsm/spatial"][:] = xy

    return fn


def _no_spatial(f: h5py.File) -> None:
    del f["obsm/spatial"]


def _huge_image(f: h5py.File) -> None:
    g = f["uns/spatial"][next(iter(f["uns/spatial"]))]["images"]
    g.create_dataset("huge", shape=(30_000, 30_000, 3), dtype="u1", chunks=(256, 256, 3))


def _truncated(tmp: Path) -> bytes:
    return _good(tmp).read_bytes()[:4096]


def _not_anndata(tmp: Path) -> bytes:
    p = tmp / "n.h5"
    with h5py.File(p, "w") as f:
        f["foo"] = np.arange(3)
    return p.read_bytes()


def _lognorm(tmp: Path) -> bytes:
    from core.synth import make_sample

    a = make_sample(n_spots=300, n_genes=400, seed=3).adata
    X = a.X.astype(np.float32)  # type: ignore[attr-defined]
    X.data = np.log1p(X.data * 1.37)
    a.X = X  # type: ignore[attr-defined]
    p = tmp / "log.h5ad"
    a.write_h5ad(p)  # type: ignore[attr-defined]
    return p.read_bytes()


def _empty_after_qc(tmp: Path) -> bytes:
    from core.synth import make_sample

    a = make_sample(n_spots=300, n_genes=400, seed=4).adata
    mito = np.array([str(g).startswith("MT-") for g in a.var_names])  # type: ignore[attr-defined]
    X = sp.csr_matrix(a.X) @ sp.diags(mito.astype(np.int32))  # type: ignore[attr-defined]
    X = sp.csr_matrix(X, dtype=np.int32)
    X.eliminate_zeros()
    a.X = X  # type: ignore[attr-defined]
    p = tmp / "mito.h5ad"
    a.write_h5ad(p)  # type: ignore[attr-defined]
    return p.read_bytes()


def _unknown_genes(tmp: Path) -> bytes:
    from core.synth import make_sample

    a = make_sample(n_spots=300, n_genes=400, seed=6).adata
    a.var_names = [f"ENSG{i:011d}" for i in range(a.n_vars)]  # type: ignore[attr-defined]
    p = tmp / "ens.h5ad"
    a.write_h5ad(p)  # type: ignore[attr-defined]
    return p.read_bytes()


def _tar(members: Callable[[tarfile.TarFile], None]) -> Callable[[Path], bytes]:
    def make(tmp: Path) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            members(t)
        return buf.getvalue()

    return make


def _add(t: tarfile.TarFile, name: str, data: bytes = b"x", **kw: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _dotdot(t: tarfile.TarFile) -> None:
    _add(t, "outs/filtered_feature_bc_matrix.h5")
    _add(t, "../../evil.h5ad")


def _symlink(t: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("outs/filtered_feature_bc_matrix.h5")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    t.addfile(info)


def _hardlink(t: tarfile.TarFile) -> None:
    _add(t, "outs/tissue_positions.csv")
    info = tarfile.TarInfo("outs/filtered_feature_bc_matrix.h5")
    info.type, info.linkname = tarfile.LNKTYPE, "../../../etc/passwd"
    t.addfile(info)


def _tar_bomb(t: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("outs/filtered_feature_bc_matrix.h5")
    info.size = 30 * 1024 * 1024
    t.addfile(info, io.BytesIO(b"\0" * info.size))


def _zip_bomb(tmp: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("outs/filtered_feature_bc_matrix.h5", b"\0" * (30 * 1024 * 1024))
    return buf.getvalue()


def _sparse_1gib(tmp: Path) -> bytes:
    # issue 18: a ~100-byte .tar.gz whose one (sparse) member declares 1 GiB
    from tests.security.test_archives import sparse_targz

    return sparse_targz()


def _zip_file_folder_clash(tmp: Path) -> bytes:
    # issue 18: outs/a is a file, then outs/a/b needs it to be a folder
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("outs/filtered_feature_bc_matrix.h5", b"x")
        z.writestr("outs/spatial/tissue_positions.csv", b"x")
        z.writestr("outs/a", b"x")
        z.writestr("outs/a/b", b"x")
    return buf.getvalue()


def _zip_nested_outs(tmp: Path) -> bytes:
    # the matrix two folders down, no positions anywhere: refused before unpacking
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("run1/sample/outs/filtered_feature_bc_matrix.h5", b"x" * 1000)
        z.writestr("run1/sample/outs/web_summary.html", b"<html>")
    return buf.getvalue()


def _zip_dotdot(tmp: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("outs/filtered_feature_bc_matrix.h5", b"x")
        z.writestr("../../../tmp/evil.h5ad", b"x")
    return buf.getvalue()


# name -> (generator, accepted codes); "succeeded" means the job must succeed
CORPUS: dict[str, tuple[Callable[[Path], bytes], set[str]]] = {
    "truncated_h5ad": (_truncated, {"corrupt_file"}),
    "not_hdf5": (lambda tmp: b"hello, not a sample\n" * 50, {"unsupported_format"}),
    "hdf5_not_anndata": (_not_anndata, {"unsupported_format"}),
    "external_link": (_edit(_external), {"unsafe_file"}),
    "virtual_dataset": (_edit(_virtual), {"unsafe_file"}),
    "external_storage_passwd": (_edit(_external_storage), {"unsafe_file"}),
    "external_storage_environ": (_edit(_external_environ), {"unsafe_file"}),
    "plugin_filter": (_edit(_plugin_filter), {"unsafe_file"}),
    "declared_shape_1e9x1e6": (_edit(_shape), {"corrupt_file"}),
    "indptr_not_monotone": (_edit(_indptr), {"corrupt_file"}),
    "indices_out_of_range": (_edit(_indices), {"corrupt_file"}),
    "nan_coordinates": (_edit(_coord(np.nan)), {"bad_coordinates"}),
    "inf_coordinates": (_edit(_coord(np.inf)), {"bad_coordinates"}),
    "no_obsm_spatial": (_edit(_no_spatial), {"missing_coordinates"}),
    "image_30000x30000": (_edit(_huge_image), {"image_too_large"}),
    "tar_dotdot_path": (_tar(_dotdot), {"unsafe_file"}),
    "tar_symlink": (_tar(_symlink), {"unsafe_file"}),
    "tar_hardlink": (_tar(_hardlink), {"unsafe_file"}),
    "tar_decompression_bomb": (_tar(_tar_bomb), {"archive_too_large"}),
    "tar_sparse_member_1gib": (_sparse_1gib, {"archive_unsupported_member"}),
    "zip_decompression_bomb": (_zip_bomb, {"archive_too_large"}),
    "zip_dotdot_path": (_zip_dotdot, {"unsafe_file"}),
    "zip_file_folder_clash": (_zip_file_folder_clash, {"archive_path_conflict"}),
    "zip_nested_outs_without_positions": (_zip_nested_outs, {"missing_coordinates"}),
    "log_normalised_no_counts": (_lognorm, {"missing_counts"}),
    "no_spots_after_qc": (_empty_after_qc, {"empty_after_qc"}),
    "unknown_gene_ids": (_unknown_genes, {"succeeded"}),
}


@pytest.fixture(scope="module")
def workers(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[list[Any]]:
    logs = tmp_path_factory.mktemp("bad-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    procs = [
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis"),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def outcomes(
    api: str, tenant_a: dict[str, str], workers: list[Any], tmp_path_factory: Any
) -> dict[str, dict[str, Any]]:
    """Upload every sample, submit a job for each accepted one, wait for all (bounded)."""
    out: dict[str, dict[str, Any]] = {}
    jobs: dict[str, str] = {}
    with client(api, tenant_a["auth"]) as c:
        for name, (make, _) in CORPUS.items():
            data = make(tmp_path_factory.mktemp(name))
            suffix = (
                ".tar.gz"
                if name.startswith("tar")
                else ".zip"
                if name.startswith("zip")
                else ".h5ad"
            )
            r = upload(c, data, name + suffix)
            if r.status_code != 201:
                out[name] = {"where": "upload", "status": r.status_code, **r.json()}
                continue
            j = c.post("/v1/jobs", json={"upload_id": r.json()["id"]})
            assert j.status_code == 202, j.text
            jobs[name] = j.json()["id"]
        deadline = time.time() + 240
        while jobs and time.time() < deadline:
            for name, jid in list(jobs.items()):
                job = c.get(f"/v1/jobs/{jid}").json()
                if job["state"] in ("succeeded", "failed", "canceled"):
                    out[name] = {
                        "where": "job",
                        "state": job["state"],
                        **(job["error"] or {}),
                        "job": job,
                    }
                    del jobs[name]
            time.sleep(0.5)
        for name, jid in jobs.items():
            out[name] = {"where": "job", "state": "timeout", "job": c.get(f"/v1/jobs/{jid}").json()}
        if "unknown_gene_ids" in out and out["unknown_gene_ids"].get("state") == "succeeded":
            jid = out["unknown_gene_ids"]["job"]["id"]
            out["unknown_gene_ids"]["features"] = c.get(
                f"/v1/jobs/{jid}/artifacts/features.json"
            ).json()
    return out


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_file(name: str, outcomes: dict[str, dict[str, Any]]) -> None:
    got = outcomes[name]
    expected = CORPUS[name][1]
    if expected == {"succeeded"}:
        assert got.get("state") == "succeeded", got
        ann = got["features"].get("annotation", {})
        assert ann.get("available") is False, ann
        return
    if got["where"] == "upload":
        assert 400 <= got["status"] < 500, got
        assert got["code"] in expected, got
    else:
        assert got["state"] == "failed", got
        assert got["code"] in expected, got
    assert got["detail"] and len(got["detail"]) > 10, got
    # nothing read from the worker's disk comes back, whatever the outcome
    assert "root:" not in str(got) and "MGS_DATABASE_URL" not in str(got), got


def test_api_and_workers_stay_up(
    api: str, outcomes: dict[str, dict[str, Any]], workers: list[Any]
) -> None:
    with client(api, None) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
    for p in workers:
        assert p.p.poll() is None, p.tail()
