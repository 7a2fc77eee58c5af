"""HDF5 features that make the library read outside the uploaded file, refused before any read.

An HDF5 file can make the library open, read or execute things other than itself:

- **external links** (``h5py.ExternalLink``): a link resolved in another file;
- **soft links**: harmless inside the file, refused anyway (they hide where data lives);
- **virtual datasets** (VDS): a dataset whose values are mapped from other files;
- **external storage** (``create_dataset(..., external=[(path, offset, size)])``): a dataset
  whose raw bytes live in any file the reading process can open (``/etc/passwd``,
  ``/proc/self/environ``); reading it is an arbitrary file read;
- **filters** (compression and other pipeline stages): a filter id that is not built into
  HDF5 or h5py makes the library look for a plugin shared object (``HDF5_PLUGIN_PATH``) and
  run its code.

:func:`harden_hdf5` turns dynamic plugin loading off for the process (so an unknown filter can
only fail, never load code), and :func:`check_hdf5_tree` walks every object of an open file and
raises :class:`~core.errors.UnsafeFile` when it finds any of the above. Both run before any
dataset of an uploaded file is read: at upload (in the API's sniffing subprocess), in the
worker's sandboxed validation, and in the CLI's reader. Nothing from the file's own external
references (paths, names) is echoed in the error: a job's error says what kind of reference
was found and where in the file, never the outside path.

Only this module and :mod:`h5py` are imported, so the API's slim image can run it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from core.errors import CorruptFile, UnsafeFile

if TYPE_CHECKING:
    from pathlib import Path

    import h5py

#: Filters HDF5 itself implements (deflate, shuffle, fletcher32, szip, nbit, scaleoffset)
#: and the one h5py registers in-process (LZF). Any other id would need a plugin.
ALLOWED_FILTERS: frozenset[int] = frozenset({1, 2, 3, 4, 5, 6, 32000})
MAX_OBJECTS = 200_000
MAX_DEPTH = 32

_hardened = False


def _loaded_libhdf5() -> str | None:
    """Path of the libhdf5 this process has loaded (h5py's bundled copy or the system's)."""
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.split()[-1] if line.strip() else ""
                if "libhdf5" in path and "_hl" not in path and path.startswith("/"):
                    return path
    except OSError:
        return None
    return None


def harden_hdf5() -> None:
    """Stop HDF5 from loading filter plugins in this process and its children (idempotent).

    The plugin search path is emptied (h5py's :mod:`h5py.h5pl`), dynamic loading is switched
    off with ``H5PLset_loading_state(0)`` where the loaded library exposes it, and
    ``HDF5_PLUGIN_PRELOAD=::`` (HDF5's own "load no plugins") with an empty
    ``HDF5_PLUGIN_PATH`` is set for any child process started from here.
    """
    global _hardened
    os.environ["HDF5_PLUGIN_PATH"] = ""
    os.environ["HDF5_PLUGIN_PRELOAD"] = "::"
    if _hardened:
        return
    import h5py

    while h5py.h5pl.size():
        h5py.h5pl.remove(0)
    lib = _loaded_libhdf5()
    if lib is not None:
        import ctypes

        try:
            fn = ctypes.CDLL(lib).H5PLset_loading_state
            fn.argtypes = [ctypes.c_uint]
            fn(0)
        except (OSError, AttributeError):  # pragma: no cover - older library: the empty path holds
            pass
    _hardened = True


def plugin_loading_state() -> int | None:
    """HDF5's plugin-loading mask (0: none may load), or None if the library does not say."""
    lib = _loaded_libhdf5()
    if lib is None:
        return None
    import ctypes

    try:
        fn = ctypes.CDLL(lib).H5PLget_loading_state
    except (OSError, AttributeError):
        return None
    mask = ctypes.c_uint(0xFFFF)
    fn.argtypes = [ctypes.POINTER(ctypes.c_uint)]
    return None if fn(ctypes.byref(mask)) < 0 else int(mask.value)


def _dataset_problems(ds: Any, where: str) -> list[str]:
    import h5py

    bad: list[str] = []
    if ds.is_virtual:
        bad.append(f"{where} is a virtual dataset (its values come from other files)")
    plist = ds.id.get_create_plist()
    if plist.get_external_count() > 0:
        bad.append(f"{where} stores its data in an external file")
    for i in range(plist.get_nfilters()):
        fid = int(plist.get_filter(i)[0])
        if fid not in ALLOWED_FILTERS:
            bad.append(f"{where} uses HDF5 filter {fid}, which needs a plugin")
    if ds.dtype.kind == "O" and h5py.check_dtype(ref=ds.dtype) is h5py.RegionReference:
        bad.append(f"{where} holds region references")
    return bad


def check_hdf5_tree(f: h5py.Group) -> None:
    """Refuse a file with external links, soft links, virtual datasets, external storage,
    plugin filters, or a link structure too deep or too large to walk.

    Parameters
    ----------
    f
        An open :class:`h5py.File`. Only metadata is read.

    Raises
    ------
    UnsafeFile
        Naming each problem (at most five) by its path inside the file.
    CorruptFile
        When an object's metadata cannot be read.
    """
    import h5py

    bad: list[str] = []
    seen: set[Any] = set()
    count = 0

    def visit(group: Any, prefix: str, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            bad.append(f"{prefix or '/'} nests deeper than {MAX_DEPTH} groups")
            return
        for name in group:
            count += 1
            if count > MAX_OBJECTS:
                raise UnsafeFile(f"refused: the file holds more than {MAX_OBJECTS:,} links")
            p = f"{prefix}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                bad.append(f"{p} is an external link to another file")
                continue
            if isinstance(link, h5py.SoftLink):
                bad.append(f"{p} is a soft link")
                continue
            try:
                obj = group[name]
                addr = hash(obj.id)  # h5py hashes an object by file and address
            except (KeyError, OSError, ValueError) as e:
                raise CorruptFile(f"cannot read the object at {p}: {type(e).__name__}") from e
            if addr in seen:  # a second hard link to an object already checked
                continue
            seen.add(addr)
            if isinstance(obj, h5py.Dataset):
                bad.extend(_dataset_problems(obj, p))
            elif isinstance(obj, h5py.Group):
                visit(obj, p, depth + 1)

    visit(f, "", 0)
    if bad:
        raise UnsafeFile(
            "refused: " + "; ".join(bad[:5]) + (f" (+{len(bad) - 5} more)" if len(bad) > 5 else "")
        )


def open_checked(path: str | Path) -> h5py.File:
    """Open ``path`` read-only with plugins off and :func:`check_hdf5_tree` passed.

    The caller closes the returned :class:`h5py.File` (use it as a context manager).
    """
    import h5py

    harden_hdf5()
    f = h5py.File(path, "r")
    try:
        check_hdf5_tree(f)
    except BaseException:
        f.close()
        raise
    return f


def sniff_main(path: str) -> None:
    """``python -m core.io.hdf5_safety PATH``: the API's sandboxed upload check.

    Prints one word: ``h5ad``, ``other`` or ``unsafe``; exits non-zero on a damaged file.
    """
    try:
        f = open_checked(path)
    except UnsafeFile:
        print("unsafe")
        return
    with f:
        print("h5ad" if ("obs" in f and "var" in f) else "other")


if __name__ == "__main__":
    import sys

    sniff_main(sys.argv[1])
