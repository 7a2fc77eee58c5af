"""Safe extraction of ``.zip`` / ``.tar.gz`` uploads of a Space Ranger folder.

No member may land outside the target, no links or devices, a bounded number
of members and a bounded total unpacked size (checked while writing, so a
decompression bomb stops at the limit rather than filling the disk).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from core.errors import UnsafeFile, UnsupportedFormat

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


def is_archive(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def _safe_rel(name: str) -> PurePosixPath:
    if "\x00" in name:
        raise UnsafeFile(f"archive member name contains NUL: {name!r}")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or any(part == ".." for part in p.parts) or (p.parts and ":" in p.parts[0]):
        raise UnsafeFile(f"archive member {name!r} points outside the archive")
    return p


def _copy_bounded(src, dst_path: Path, budget: list[int], max_bytes: int) -> None:  # type: ignore[no-untyped-def]
    with open(dst_path, "wb") as out:
        while True:
            buf = src.read(1 << 20)
            if not buf:
                break
            budget[0] += len(buf)
            if budget[0] > max_bytes:
                raise UnsafeFile(
                    f"archive unpacks to more than {max_bytes:,} bytes (MGS_MAX_EXTRACT_BYTES); refused"
                )
            out.write(buf)


def extract_archive(path: str | Path, target: str | Path, max_bytes: int, max_members: int) -> Path:
    """Extract ``path`` into ``target`` (created), refusing anything unsafe. Returns ``target``."""
    path, target = Path(path), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = [0]
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
                if len(infos) > max_members:
                    raise UnsafeFile(f"archive holds {len(infos)} members, over {max_members}")
                for info in infos:
                    rel = _safe_rel(info.filename)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise UnsafeFile(f"archive member {info.filename!r} is a symbolic link")
                    dest = target.joinpath(*rel.parts)
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src:
                        _copy_bounded(src, dest, written, max_bytes)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as t:
                count = 0
                for m in t:
                    count += 1
                    if count > max_members:
                        raise UnsafeFile(f"archive holds more than {max_members} members")
                    rel = _safe_rel(m.name)
                    if m.issym() or m.islnk():
                        raise UnsafeFile(f"archive member {m.name!r} is a link")
                    if not (m.isfile() or m.isdir()):
                        raise UnsafeFile(f"archive member {m.name!r} is not a regular file")
                    dest = target.joinpath(*rel.parts)
                    if m.isdir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    member = t.extractfile(m)
                    if member is None:
                        continue
                    with member:
                        _copy_bounded(member, dest, written, max_bytes)
        else:
            raise UnsupportedFormat(f"{path.name} is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, EOFError) and e.errno is not None:
            raise
        raise UnsupportedFormat(f"{path.name} is a damaged archive: {e}") from e
    except UnsafeFile:
        shutil.rmtree(target, ignore_errors=True)
        raise
    # no member escaped (defence in depth: resolve every path)
    root = os.path.realpath(target)
    for dirpath, _dirs, files in os.walk(target):
        for fn in files:
            if not os.path.realpath(os.path.join(dirpath, fn)).startswith(root + os.sep):
                shutil.rmtree(target, ignore_errors=True)
                raise UnsafeFile(f"archive member {fn!r} resolves outside the target")
    return target
