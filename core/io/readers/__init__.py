"""read_sample(): one entry point for every input a lab sends.

- an AnnData ``.h5ad`` with raw counts (``X``, ``layers['counts']`` or ``.raw``),
  ``obsm['spatial']`` and optionally the H&E in ``uns['spatial'][lib]['images']``;
- a Space Ranger ``outs/`` folder: Visium v1/v2 or Visium HD (``binned_outputs/square_XXXum``);
- a ``.zip`` / ``.tar.gz`` / ``.tar`` of such a folder (extracted safely).

Every path goes through :mod:`core.io.preflight` first.

One module per concern: :mod:`.sample` (the :class:`Sample` every reader returns, sha256, layout
detection), :mod:`.h5ad`, :mod:`.tenx` (10x matrix, tissue positions, images),
:mod:`.spaceranger` (``outs/`` folders, Visium HD bins) and :mod:`.cells` (Visium HD cells).
This module holds the entry point and re-exports the public names.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from core.config import Settings, get_settings
from core.errors import InputError, UnsupportedFormat
from core.io.archive import extract_archive, is_archive, unpack_once
from core.io.readers.h5ad import read_h5ad
from core.io.readers.sample import HD_BIN_RE, LAYOUTS, Sample, detect_layout, is_blank, sha256_path
from core.io.readers.spaceranger import read_spaceranger
from core.io.readers.tenx import load_png, read_10x_h5

__all__ = [
    "HD_BIN_RE",
    "LAYOUTS",
    "Sample",
    "detect_layout",
    "is_blank",
    "load_png",
    "read_10x_h5",
    "read_sample",
    "sha256_path",
]


def read_sample(
    path: str | Path,
    settings: Settings | None = None,
    bin_size_um: int | None = None,
    unpack_dir: str | Path | None = None,
    unit: str | None = None,
) -> Sample:
    """Read and check a sample; raises an :class:`~core.errors.InputError` on bad input.

    An archive's member list is checked before anything is unpacked, and only the files the
    readers open are extracted (:mod:`core.io.archive`).

    Parameters
    ----------
    path
        ``.h5ad``, Space Ranger ``outs/`` folder, or a ``.zip`` / ``.tar.gz`` / ``.tar`` of one.
    settings
        Memory budget, image and archive limits (default: from the environment).
    bin_size_um
        Visium HD: the bin size to read (2, 8 or 16); ``None``: the largest detail the memory
        budget allows.
    unpack_dir
        Unpack an archive here once and reuse it in later calls (a job's validation and analysis
        share it; the caller removes it); ``None``: a temporary folder removed on return.
    unit
        Visium HD: ``"cell"`` reads Space Ranger 4 ``segmented_outputs/`` or, without them,
        makes cells from the 2 um bins and the H&E; ``"bin"`` reads bins; ``None``: cells when a
        segmentation is present and fits the memory budget, else bins.

    Returns
    -------
    Sample
        Raw counts (CSR float32, unique gene symbols), coordinates in full-resolution pixels,
        the H&E if any, the layout and notes on what was decided.

    Raises
    ------
    core.errors.InputError
        A subclass with a stable ``code`` (``not_found``, ``unsupported_format``,
        ``corrupt_file``, ``missing_coordinates``, ``over_memory_budget``, ...).
    """
    if unit not in (None, "cell", "bin"):
        raise InputError(f"unit must be 'cell' or 'bin', not {unit!r}", code="invalid_option")
    if unit == "cell" and bin_size_um is not None:
        raise InputError("--bin-size applies to --unit bin only", code="invalid_option")
    settings = settings or get_settings()
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", code="not_found")
    if path.is_file() and is_archive(path):
        limits = (
            settings.max_extract_bytes,
            settings.max_extract_members,
            settings.max_extract_ratio,
        )
        if unpack_dir is not None:
            inner, digest = unpack_once(path, unpack_dir, *limits)
            return _from_archive(read_sample(inner, settings, bin_size_um, unit=unit), digest)
        digest = sha256_path(path)
        tmp = Path(tempfile.mkdtemp(prefix="mgs-extract-"))
        try:
            inner = extract_archive(path, tmp / "files", *limits)
            return _from_archive(read_sample(inner, settings, bin_size_um, unit=unit), digest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if path.is_dir():
        return read_spaceranger(path, settings, bin_size_um, unit)
    if path.suffix.lower() in (".h5ad", ".h5", ".hdf5"):
        return read_h5ad(path, settings)
    raise UnsupportedFormat(
        f"{path.name}: expected an .h5ad file, a Space Ranger outs/ folder, or a .zip/.tar.gz of one"
    )


def _from_archive(s: Sample, digest: str) -> Sample:
    s.sha256 = digest
    s.source_format = f"archive:{s.source_format}"
    return s
