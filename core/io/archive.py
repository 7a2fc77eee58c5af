"""Safe extraction of ``.zip`` / ``.tar.gz`` uploads of a Space Ranger folder (or one ``.h5ad``).

Nothing is unpacked before the member list has been checked (:func:`plan_archive`):

- every name stays inside the archive (no ``..``, no absolute path, no NUL), no member is a link;
- only regular files and folders: a sparse tar member, a device, a FIFO is refused
  (``archive_unsupported_member``);
- no name is both a file and a folder, and no file appears twice (``archive_path_conflict``);
- at most ``max_members`` members, and the sizes they declare add up to at most ``max_bytes``
  and at most ``max_ratio`` times the archive's own size (``archive_too_large``); a tar is read
  only until its declared sizes pass the bound, so a bomb costs no more than the bound;
- the names match a layout the readers know: Space Ranger ``outs/`` (Visium:
  ``filtered_feature_bc_matrix.h5`` + ``spatial/tissue_positions*``; Visium HD:
  ``binned_outputs/square_XXXum/`` the same) or a single ``.h5ad``.

Then only the members the readers open are extracted (:data:`SPATIAL_FILES` and the matrix),
and the bytes written are bounded again while writing (a member that lies about its size stops
at the bound).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.errors import InputError, MissingCoordinates, UnsafeFile, UnsupportedFormat

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
MATRIX = "filtered_feature_bc_matrix.h5"
POSITION_FILES = ("tissue_positions.parquet", "tissue_positions.csv", "tissue_positions_list.csv")
SPATIAL_FILES = (
    *POSITION_FILES,
    "scalefactors_json.json",
    "tissue_hires_image.png",
    "tissue_lowres_image.png",
)
BIN_DIR_RE = re.compile(r"^square_(\d{3})um$")
# Space Ranger 4 Visium HD cells (segmented_outputs/) and the 2 um bin -> cell mapping beside it
SEG = "segmented_outputs"
CELL_FILES = (
    "filtered_feature_cell_matrix.h5",
    "cell_segmentations.geojson",
    "nucleus_segmentations.geojson",
    "barcode_mappings.parquet",
)
CELL_MEX = ("filtered_feature_cell_matrix", ("matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"))
UNPACKED_MARKER = "unpacked.json"


class ArchiveTooLarge(UnsafeFile):
    code = "archive_too_large"


class ArchiveUnsupportedMember(UnsafeFile):
    code = "archive_unsupported_member"


class ArchivePathConflict(InputError):
    code = "archive_path_conflict"


def is_archive(path: str | Path) -> bool:
    name = str(path).lower()
    return name.endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class Member:
    """One file of the archive: its name there, its path parts and its declared size."""

    name: str
    parts: tuple[str, ...]
    size: int


@dataclass
class ArchivePlan:
    """What an archive holds and what of it the readers need."""

    kind: str  # zip | tar
    files: list[Member]
    declared_bytes: int
    sample: tuple[str, ...]  # the sample inside the archive: a Space Ranger root folder or an .h5ad
    sample_kind: str  # spaceranger | h5ad
    selected: list[Member] = field(default_factory=list)

    @property
    def selected_bytes(self) -> int:
        return sum(m.size for m in self.selected)


def _safe_rel(name: str) -> PurePosixPath:
    if "\x00" in name:
        raise UnsafeFile("an archive member name contains NUL")
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or any(part == ".." for part in p.parts) or (p.parts and ":" in p.parts[0]):
        raise UnsafeFile(f"archive member {_show(name)} points outside the archive")
    return p


def _show(name: str) -> str:
    return repr(name[:120] + ("..." if len(name) > 120 else ""))


def size_bound(archive_size: int, max_bytes: int, max_ratio: float) -> int:
    """The most bytes an archive of ``archive_size`` bytes may declare (0 ratio: no ratio bound)."""
    if max_ratio and max_ratio > 0:
        return int(min(max_bytes, max_ratio * max(archive_size, 1)))
    return max_bytes


def _too_large(
    declared: int, archive_size: int, max_bytes: int, max_ratio: float
) -> ArchiveTooLarge:
    if max_ratio and declared > max_ratio * max(archive_size, 1) and declared <= max_bytes:
        return ArchiveTooLarge(
            f"the archive declares more than {max_ratio:g} times its own size unpacked "
            f"({archive_size:,} bytes unpacking to over {size_bound(archive_size, max_bytes, max_ratio):,}; "
            "MGS_MAX_EXTRACT_RATIO); refused before unpacking"
        )
    return ArchiveTooLarge(
        f"the archive unpacks to more than {max_bytes:,} bytes (MGS_MAX_EXTRACT_BYTES); "
        "refused before unpacking"
    )


def list_members(
    path: str | Path, max_bytes: int, max_members: int, max_ratio: float = 0.0
) -> tuple[str, list[Member]]:
    """``(kind, files)`` of an archive, refusing unsafe names, links, special and sparse members,
    file/folder clashes, too many members and a declared total over the bound. Unpacks nothing."""
    path = Path(path)
    archive_size = path.stat().st_size
    bound = size_bound(archive_size, max_bytes, max_ratio)
    entries: list[tuple[str, PurePosixPath, bool, int]] = []  # name, rel, is_dir, size
    total = 0
    try:
        if zipfile.is_zipfile(path):
            kind = "zip"
            with zipfile.ZipFile(path) as z:
                infos = z.infolist()
                if len(infos) > max_members:
                    raise UnsafeFile(
                        f"the archive holds {len(infos):,} members, over {max_members:,} "
                        "(MGS_MAX_EXTRACT_MEMBERS)"
                    )
                for info in infos:
                    rel = _safe_rel(info.filename)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise UnsafeFile(
                            f"archive member {_show(info.filename)} is a symbolic link"
                        )
                    if (
                        mode
                        and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
                        and stat.S_IFMT(mode)
                    ):
                        raise ArchiveUnsupportedMember(
                            f"archive member {_show(info.filename)} is not a regular file or folder"
                        )
                    total += info.file_size
                    entries.append((info.filename, rel, info.is_dir(), info.file_size))
        elif tarfile.is_tarfile(path):
            kind = "tar"
            with tarfile.open(path, "r:*") as t:
                for count, m in enumerate(t, start=1):
                    if count > max_members:
                        raise UnsafeFile(
                            f"the archive holds more than {max_members:,} members "
                            "(MGS_MAX_EXTRACT_MEMBERS)"
                        )
                    rel = _safe_rel(m.name)
                    if m.issym() or m.islnk():
                        raise UnsafeFile(f"archive member {_show(m.name)} is a link")
                    if m.issparse():
                        raise ArchiveUnsupportedMember(
                            f"archive member {_show(m.name)} is a sparse file ({m.size:,} bytes declared); "
                            "sparse members are not accepted: re-create the archive without --sparse"
                        )
                    if not (m.isfile() or m.isdir()):
                        raise ArchiveUnsupportedMember(
                            f"archive member {_show(m.name)} is not a regular file or folder"
                        )
                    total += m.size if m.isfile() else 0
                    if total > bound:  # stop reading a bomb at the bound
                        raise _too_large(total, archive_size, max_bytes, max_ratio)
                    entries.append((m.name, rel, m.isdir(), m.size if m.isfile() else 0))
        else:
            raise UnsupportedFormat(f"{path.name} is neither a zip nor a tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib_error()) as e:
        raise InputError(f"damaged archive: {type(e).__name__}: {e}", code="corrupt_file") from e
    if total > bound:
        raise _too_large(total, archive_size, max_bytes, max_ratio)
    files: dict[tuple[str, ...], Member] = {}
    dirs: set[tuple[str, ...]] = set()
    for name, rel, is_dir, size in entries:
        parts = rel.parts
        if not parts:
            continue
        for i in range(1, len(parts)):
            dirs.add(parts[:i])
        if is_dir:
            dirs.add(parts)
            continue
        if parts in files:
            raise ArchivePathConflict(f"archive member {_show(name)} appears twice")
        files[parts] = Member(name, parts, size)
    clash = sorted(set(files) & dirs)
    if clash:
        raise ArchivePathConflict(
            f"archive member {_show('/'.join(clash[0]))} is both a file and a folder; re-create the archive"
        )
    return kind, list(files.values())


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _spaceranger_root(
    files: set[tuple[str, ...]], dirs: set[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """The shallowest folder holding a matrix or ``binned_outputs/``; a bin folder stands for its HD root."""
    cands = [
        d
        for d in dirs | {()}
        if (*d, MATRIX) in files or (*d, "binned_outputs") in dirs or _has_cells(d, files)
    ]
    if not cands:
        return None
    d = min(cands, key=lambda p: (len(p), p))
    return d[:-2] if len(d) >= 2 and d[-2] == "binned_outputs" else d


def _has_cells(
    d: tuple[str, ...], files: set[tuple[str, ...]] | dict[tuple[str, ...], Member]
) -> bool:
    """``d/segmented_outputs/`` holds a cell matrix (h5 or MEX)."""
    return (*d, SEG, CELL_FILES[0]) in files or (*d, SEG, CELL_MEX[0], CELL_MEX[1][0]) in files


def _select_cells(root: tuple[str, ...], files: dict[tuple[str, ...], Member]) -> list[Member]:
    seg = (*root, SEG)
    names = [(*seg, n) for n in CELL_FILES] + [(*seg, CELL_MEX[0], n) for n in CELL_MEX[1]]
    names += [(*seg, "spatial", n) for n in SPATIAL_FILES] + [(*root, "barcode_mappings.parquet")]
    return [files[n] for n in names if n in files]


def _select_spaceranger(
    root: tuple[str, ...], files: dict[tuple[str, ...], Member], dirs: set[tuple[str, ...]]
) -> list[Member]:
    def spatial_of(folder: tuple[str, ...]) -> list[Member]:
        return [
            files[(*folder, "spatial", n)]
            for n in SPATIAL_FILES
            if (*folder, "spatial", n) in files
        ]

    def has_positions(folder: tuple[str, ...]) -> bool:
        return any((*folder, "spatial", n) in files for n in POSITION_FILES)

    where = "/".join(root) or "the archive's top level"
    cells = _select_cells(root, files) if _has_cells(root, files) else []
    if cells and (*root, "binned_outputs") not in dirs:
        return cells
    if (*root, "binned_outputs") in dirs:
        hd = (*root, "binned_outputs")
        bins = sorted(
            d
            for d in dirs
            if len(d) == len(hd) + 1
            and d[:-1] == hd
            and BIN_DIR_RE.match(d[-1])
            and (*d, MATRIX) in files
        )
        if not bins:
            raise UnsupportedFormat(
                f"{where}/binned_outputs holds no square_XXXum folder with a {MATRIX}"
            )
        if not any(has_positions(b) for b in bins):
            raise MissingCoordinates(
                f"no bin folder under {where}/binned_outputs has spatial/tissue_positions "
                "(.parquet or .csv)"
            )
        return cells + [m for b in bins for m in (files[(*b, MATRIX)], *spatial_of(b))]
    if not has_positions(root):
        raise MissingCoordinates(
            f"{where} has {MATRIX} but no spatial/tissue_positions.parquet, tissue_positions.csv or "
            "tissue_positions_list.csv"
        )
    return [files[(*root, MATRIX)], *spatial_of(root)]


def plan_archive(
    path: str | Path, max_bytes: int, max_members: int, max_ratio: float = 0.0
) -> ArchivePlan:
    """Check an archive's member list against the layouts the readers know; unpacks nothing.

    Raises an :class:`~core.errors.InputError` (``unsafe_file``, ``archive_too_large``,
    ``archive_unsupported_member``, ``archive_path_conflict``, ``corrupt_file``,
    ``not_spaceranger``, ``missing_coordinates``, ``unsupported_format``).
    """
    kind, members = list_members(path, max_bytes, max_members, max_ratio)
    files = {m.parts: m for m in members}
    dirs = {m.parts[:i] for m in members for i in range(1, len(m.parts))}
    declared = sum(m.size for m in members)
    root = _spaceranger_root(set(files), dirs)
    if root is not None:
        return ArchivePlan(
            kind, members, declared, root, "spaceranger", _select_spaceranger(root, files, dirs)
        )
    h5ads = [m for m in members if m.parts[-1].lower().endswith(".h5ad")]
    if len(h5ads) == 1:
        return ArchivePlan(kind, members, declared, h5ads[0].parts, "h5ad", h5ads)
    if len(h5ads) > 1:
        raise UnsupportedFormat(
            "the archive holds several .h5ad files; send one sample per archive"
        )
    raise InputError(
        "the archive holds no Space Ranger output (filtered_feature_bc_matrix.h5 with spatial/, or "
        "binned_outputs/) and no .h5ad",
        code="not_spaceranger",
    )


def _copy_bounded(src, dst_path: Path, budget: list[int], max_bytes: int) -> None:  # type: ignore[no-untyped-def]
    with open(dst_path, "wb") as out:
        while True:
            buf = src.read(1 << 20)
            if not buf:
                break
            budget[0] += len(buf)
            if budget[0] > max_bytes:
                raise ArchiveTooLarge(
                    f"the archive unpacks to more than its members declare ({max_bytes:,} bytes); refused"
                )
            out.write(buf)


def extract_plan(path: str | Path, plan: ArchivePlan, target: str | Path) -> Path:
    """Write the plan's selected members under ``target`` (created); returns the sample's path there."""
    path, target = Path(path), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    wanted = {m.name: m for m in plan.selected}
    bound = plan.selected_bytes
    written = [0]

    def dest_of(m: Member) -> Path:
        dest = target.joinpath(*m.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest

    try:
        if plan.kind == "zip":
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if info.filename in wanted and not info.is_dir():
                        with z.open(info) as src:
                            _copy_bounded(src, dest_of(wanted[info.filename]), written, bound)
        else:
            with tarfile.open(path, "r:*") as t:
                for m in t:
                    if m.name in wanted and m.isfile() and not m.issparse():
                        member = t.extractfile(m)
                        if member is not None:
                            with member:
                                _copy_bounded(member, dest_of(wanted[m.name]), written, bound)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib_error()) as e:
        shutil.rmtree(target, ignore_errors=True)
        raise InputError(f"damaged archive: {type(e).__name__}: {e}", code="corrupt_file") from e
    except InputError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    # defence in depth: every written path resolves inside the target
    root = os.path.realpath(target)
    for dirpath, _dirs, fnames in os.walk(target):
        for fn in fnames:
            if not os.path.realpath(os.path.join(dirpath, fn)).startswith(root + os.sep):
                shutil.rmtree(target, ignore_errors=True)
                raise UnsafeFile("an archive member resolves outside the target")
    return target.joinpath(*plan.sample)


def extract_archive(
    path: str | Path, target: str | Path, max_bytes: int, max_members: int, max_ratio: float = 0.0
) -> Path:
    """Check ``path`` (:func:`plan_archive`), then extract only what the readers need into ``target``.

    Returns the sample's path inside ``target`` (a Space Ranger root folder or an ``.h5ad``).
    """
    plan = plan_archive(path, max_bytes, max_members, max_ratio)
    return extract_plan(path, plan, target)


def unpack_once(
    path: str | Path, workdir: str | Path, max_bytes: int, max_members: int, max_ratio: float = 0.0
) -> tuple[Path, str]:
    """Extract ``path`` into ``workdir`` the first time; later calls reuse what is there.

    The validation and the analysis of one job attempt share ``workdir``: the archive is unpacked
    once. Returns ``(sample path, sha256 of the archive)``. ``workdir/unpacked.json`` is written
    last, so a half-done extraction (a killed child) is redone rather than reused.
    """
    path, workdir = Path(path), Path(workdir)
    marker = workdir / UNPACKED_MARKER
    if marker.is_file():
        done = json.loads(marker.read_text())
        return workdir / "files" / done["sample"], str(done["sha256"])
    shutil.rmtree(workdir, ignore_errors=True)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(1 << 22), b""):
            h.update(buf)
    sample = extract_archive(path, workdir / "files", max_bytes, max_members, max_ratio)
    rel = sample.relative_to(workdir / "files")
    marker.write_text(json.dumps({"sample": str(rel), "sha256": h.hexdigest()}))
    return sample, h.hexdigest()
