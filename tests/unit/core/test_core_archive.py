"""Archives are extracted safely: nothing outside the target, no links, bounded size."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from core import errors
from core.io.archive import extract_archive


def _tar(path: Path, members: list[tuple[str, bytes]], link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        if link:
            ti = tarfile.TarInfo("outs/evil")
            ti.type = tarfile.SYMTYPE
            ti.linkname = link
            t.addfile(ti)
    return path


def test_tar_extracts(tmp_path: Path) -> None:
    a = _tar(
        tmp_path / "a.tar.gz",
        [
            ("outs/filtered_feature_bc_matrix.h5", b"m"),
            ("outs/spatial/tissue_positions.csv", b"yo"),
            ("outs/x.txt", b"hi"),
        ],
    )
    root = extract_archive(a, tmp_path / "o", 10_000, 100)
    assert root == tmp_path / "o" / "outs"
    assert (root / "spatial/tissue_positions.csv").read_bytes() == b"yo"
    assert not (root / "x.txt").exists()  # not a file the readers open: never written


def test_single_h5ad_anywhere(tmp_path: Path) -> None:
    a = _tar(tmp_path / "a.tar.gz", [("deep/er/s.h5ad", b"h"), ("notes.txt", b"n")])
    root = extract_archive(a, tmp_path / "o", 10_000, 100)
    assert root == tmp_path / "o" / "deep/er/s.h5ad" and root.read_bytes() == b"h"
    assert not (tmp_path / "o" / "notes.txt").exists()


def test_tar_dotdot_refused(tmp_path: Path) -> None:
    a = _tar(tmp_path / "a.tar.gz", [("../escape.txt", b"x")])
    with pytest.raises(errors.UnsafeFile, match="outside"):
        extract_archive(a, tmp_path / "o", 10_000, 100)
    assert not (tmp_path / "escape.txt").exists()


def test_tar_symlink_refused(tmp_path: Path) -> None:
    a = _tar(tmp_path / "a.tar.gz", [("outs/x.txt", b"hi")], link="/etc/passwd")
    with pytest.raises(errors.UnsafeFile, match="link"):
        extract_archive(a, tmp_path / "o", 10_000, 100)
    assert not (tmp_path / "o").exists()


def test_zip_absolute_path_refused(tmp_path: Path) -> None:
    p = tmp_path / "a.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("/etc/cron.d/x", "boom")
    with pytest.raises(errors.UnsafeFile):
        extract_archive(p, tmp_path / "o", 10_000, 100)


def test_decompression_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("outs/filtered_feature_bc_matrix.h5", b"\0" * 20_000_000)
    assert p.stat().st_size < 100_000
    with pytest.raises(errors.UnsafeFile, match="unpacks to more than"):
        extract_archive(p, tmp_path / "o", 1_000_000, 100)
    assert not (tmp_path / "o").exists()


def test_too_many_members(tmp_path: Path) -> None:
    a = _tar(tmp_path / "a.tar.gz", [(f"outs/{i}.txt", b"x") for i in range(20)])
    with pytest.raises(errors.UnsafeFile, match="members"):
        extract_archive(a, tmp_path / "o", 10_000, 10)


def test_not_an_archive(tmp_path: Path) -> None:
    p = tmp_path / "x.zip"
    p.write_bytes(b"not a zip at all")
    with pytest.raises(errors.UnsupportedFormat):
        extract_archive(p, tmp_path / "o", 10_000, 10)
