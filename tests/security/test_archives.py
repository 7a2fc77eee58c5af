"""Issue 18 item 2: tiny archives must not expand to gigabytes on the worker.

The member list is checked against the layouts the readers know before anything is unpacked;
sparse tar members are refused; the declared unpacked total is bounded relative to the upload
(``MGS_MAX_EXTRACT_RATIO``) and absolutely (``MGS_MAX_EXTRACT_BYTES``); a name that is both a
file and a folder is a precise bad-input error; only the members the readers open are
extracted; a job's validation and analysis share one unpacked folder.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from core import errors
from core.config import Settings
from core.io import archive
from core.io.archive import extract_archive, plan_archive
from core.io.readers import read_sample
from tests.service.helpers import VISIUM_DIR, client, upload

GIB = 1 << 30


def sparse_targz(name: str = "outs/filtered_feature_bc_matrix.h5", real: int = GIB) -> bytes:
    """A .tar.gz of one GNU sparse member declaring ``real`` bytes, all holes (about 100 bytes)."""
    ti = tarfile.TarInfo(name)
    ti.type, ti.size = tarfile.GNUTYPE_SPARSE, 0
    buf = bytearray(ti.tobuf(tarfile.GNU_FORMAT))

    def octal(n: int) -> bytes:
        return b"%011o\0" % n

    buf[386:398], buf[398:410] = octal(real), octal(0)  # one map entry: a hole up to `real`
    buf[483:495] = octal(real)  # the member's real size
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf[:512])
    data = gzip.compress(bytes(buf) + b"\0" * 1024)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        member = t.getmembers()[0]
    assert member.issparse() and member.size == real  # what GNU tar --sparse writes
    return data


def zip_of(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def small_layout() -> list[tuple[str, bytes]]:
    """The names of a Visium outs/ folder with a few kB of incompressible content."""
    import random

    rnd = random.Random(0)
    return [
        ("outs/filtered_feature_bc_matrix.h5", rnd.randbytes(4000)),
        ("outs/spatial/tissue_positions.csv", rnd.randbytes(4000)),
    ]


def visium_members(prefix: str = "outs") -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}/{p.relative_to(VISIUM_DIR).as_posix()}", p.read_bytes())
        for p in sorted(VISIUM_DIR.rglob("*"))
        if p.is_file()
    ]


def targz_of(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------- before anything is unpacked
def test_sparse_tar_member_is_refused_before_unpacking(tmp_path: Path) -> None:
    data = sparse_targz()
    assert len(data) < 200  # the 171-byte upload
    p = _write(tmp_path, "s.tar.gz", data)
    with pytest.raises(errors.InputError) as e:
        extract_archive(p, tmp_path / "o", 100 * GIB, 100)
    assert e.value.code == "archive_unsupported_member", e.value.detail
    assert "sparse" in e.value.detail
    assert not (tmp_path / "o").exists()


def test_zip_bomb_is_refused_by_ratio_before_unpacking(tmp_path: Path) -> None:
    # 20 MB of zeros compresses ~1000x: under the absolute bound, far over the ratio
    data = zip_of([*small_layout(), ("outs/spatial/padding.bin", b"\0" * 20_000_000)])
    p = _write(tmp_path, "b.zip", data)
    with pytest.raises(errors.InputError) as e:
        extract_archive(p, tmp_path / "o", 100 * GIB, 100, max_ratio=100)
    assert e.value.code == "archive_too_large" and "MGS_MAX_EXTRACT_RATIO" in e.value.detail
    assert not (tmp_path / "o").exists()
    # the same archive is within a looser ratio, and the padding (not read) is not extracted
    root = extract_archive(p, tmp_path / "o", 100 * GIB, 100, max_ratio=10_000)
    assert not (root / "spatial" / "padding.bin").exists()


def test_absolute_bound_counts_declared_sizes(tmp_path: Path) -> None:
    p = _write(
        tmp_path, "b.tar.gz", targz_of([*visium_members(), ("outs/big.bin", b"\0" * 3_000_000)])
    )
    with pytest.raises(errors.InputError) as e:
        plan_archive(p, 2_000_000, 100)
    assert e.value.code == "archive_too_large" and "MGS_MAX_EXTRACT_BYTES" in e.value.detail


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "members",
    [
        [("outs/a", b"x"), ("outs/a/b", b"y")],
        [("outs/a/b", b"y"), ("outs/a", b"x")],
        [
            ("outs/filtered_feature_bc_matrix.h5", b"x"),
            ("outs/filtered_feature_bc_matrix.h5", b"y"),
        ],
    ],
    ids=["file-then-folder", "folder-then-file", "same-file-twice"],
)
def test_file_folder_clash_is_a_precise_error(
    tmp_path: Path, members: list[tuple[str, bytes]]
) -> None:
    p = _write(tmp_path, "c.zip", zip_of(members))
    with pytest.raises(errors.InputError) as e:
        read_sample(p, Settings())
    assert e.value.code == "archive_path_conflict", e.value.detail
    assert "Traceback" not in e.value.detail and "/tmp" not in e.value.detail


def test_missing_positions_is_refused_before_unpacking(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.zip", zip_of([("outs/filtered_feature_bc_matrix.h5", b"\0" * 1000)]))
    with pytest.raises(errors.InputError) as e:
        extract_archive(p, tmp_path / "o", GIB, 100)
    assert e.value.code == "missing_coordinates"
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not VISIUM_DIR.is_dir(), reason="../shared/data is absent")
def test_members_we_do_not_read_are_not_extracted(tmp_path: Path) -> None:
    junk = [
        ("outs/possorted_genome_bam.bam", b"B" * 50_000),
        ("outs/web_summary.html", b"<html>"),
        ("outs/raw_feature_bc_matrix.h5", b"R" * 1000),
        ("outs/spatial/aligned_fiducials.jpg", b"J" * 1000),
        ("outs/analysis/clustering/x.csv", b"1,2"),
        ("README.txt", b"hello"),
    ]
    p = _write(tmp_path, "s.tar.gz", targz_of([*visium_members(), *junk]))
    root = extract_archive(p, tmp_path / "o", GIB, 100, max_ratio=100)
    assert root == tmp_path / "o" / "outs"
    got = {
        q.relative_to(tmp_path / "o").as_posix() for q in (tmp_path / "o").rglob("*") if q.is_file()
    }
    assert got == {n for n, _ in visium_members()}
    s = read_sample(p, Settings())
    assert s.adata.n_obs > 0 and s.source_format == "archive:spaceranger"


@pytest.mark.skipif(not VISIUM_DIR.is_dir(), reason="../shared/data is absent")
def test_validation_and_analysis_unpack_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.jobs.sandbox import validate_in_subprocess
    from core.runner import AnalyzeOptions, run_analysis_stage

    data = targz_of(visium_members())
    p = _write(tmp_path, "sample.tar.gz", data)
    unpacked = tmp_path / "unpacked"
    summary = validate_in_subprocess(
        p, Settings(), unpack_dir=unpacked
    )  # the sandboxed child unpacks
    assert summary["n_obs"] > 0
    assert (unpacked / archive.UNPACKED_MARKER).is_file()

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the archive was unpacked a second time")

    monkeypatch.setattr(archive, "extract_plan", refuse)
    out = run_analysis_stage(p, tmp_path / "out", AnalyzeOptions(), Settings(), unpack_dir=unpacked)
    assert out["n_spots"] == summary["n_obs"]
    import json

    prov = json.loads((tmp_path / "out" / "analysis.json").read_text())["provenance"]
    assert prov["input_sha256"] == hashlib.sha256(data).hexdigest()
    assert prov["input_format"] == "archive:spaceranger"


# ----------------------------------------------------------------- over the real API
def test_upload_refuses_hostile_archives(api: str, tenant_a: dict[str, str]) -> None:
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, sparse_targz(), "sparse.tar.gz")
        assert r.status_code == 422 and r.json()["code"] == "archive_unsupported_member", r.text
        # 10 MB of zeros in a ~10 kB zip: under MGS_MAX_EXTRACT_BYTES (20 MiB here), over the ratio
        bomb = zip_of([*small_layout(), ("outs/spatial/padding.bin", b"\0" * 10_000_000)])
        r = upload(c, bomb, "bomb.zip")
        assert r.status_code == 422 and r.json()["code"] == "archive_too_large", r.text
        assert "MGS_MAX_EXTRACT_RATIO" in r.json()["detail"]
        r = upload(c, zip_of([("outs/a", b"x"), ("outs/a/b", b"y")]), "clash.zip")
        assert r.status_code == 422 and r.json()["code"] == "archive_path_conflict", r.text
        r = upload(c, zip_of([("outs/filtered_feature_bc_matrix.h5", b"x")]), "nopos.zip")
        assert r.status_code == 422 and r.json()["code"] == "missing_coordinates", r.text
        # the real sample with extra members the readers never open is accepted
        extra = [("outs/possorted_genome_bam.bam", b"B" * 10_000)]
        r = upload(c, targz_of([*visium_members(), *extra]), "ok.tar.gz")
        assert r.status_code == 201, r.text
