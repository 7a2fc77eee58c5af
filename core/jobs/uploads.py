"""Uploads: streamed to a temporary file (hashing, size limit), sniffed, then put in storage.

The body is never held in memory: chunks go to disk as they arrive, and the
object store copies (S3: multipart-uploads) from that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import unicodedata
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db.models import Upload
from core.errors import InputError, UnsupportedFormat
from core.jobs.cleanup import upload_temp_prefix
from core.jobs.errors import UploadTooLarge
from core.storage import ObjectStore

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FLUSH = 1 << 20


def _check_anndata_in_subprocess(path: Path) -> str:
    """Open the HDF5 file in a limited child: a hostile file can't crash the API process."""
    import subprocess
    import sys

    from core.rlimits import Limits, limited

    # called from a worker thread of the API: the limits are set in the child (no preexec_fn)
    try:
        proc = subprocess.run(
            limited(
                [sys.executable, "-m", "core.io.hdf5_safety", str(path)],
                Limits(memory_mb=2048, cpu_s=20),
            ),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InputError("the HDF5 file could not be checked in time", code="corrupt_file") from e
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise InputError("damaged HDF5 file (cannot be opened)", code="corrupt_file")
    if out == "unsafe":
        raise InputError(
            "refused: the HDF5 file refers to data outside itself (external links or storage, "
            "virtual datasets, soft links or plugin filters)",
            code="unsafe_file",
        )
    if out != "h5ad":
        raise UnsupportedFormat("an HDF5 file that is not AnnData (.h5ad with obs and var)")
    return "h5ad"


def sniff_format(
    path: Path, max_members: int, max_bytes: int | None = None, max_ratio: float = 0.0
) -> str:
    """``h5ad`` | ``tar.gz`` | ``tar`` | ``zip``; refuses everything else.

    Cheap structural checks only: an HDF5 file must look like AnnData (``obs``
    and ``var`` groups); an archive's member list must be safe, within the size bounds, and
    match a layout the readers know (:func:`core.io.archive.plan_archive`; nothing is unpacked).
    The full check runs later in the worker's sandboxed validation.
    """
    from core.io.archive import plan_archive

    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(HDF5_MAGIC):
        return _check_anndata_in_subprocess(path)
    if head.startswith(b"PK\x03\x04"):
        fmt = "zip"
    elif head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar":
        fmt = "tar.gz" if head.startswith(b"\x1f\x8b") else "tar"
    else:
        raise UnsupportedFormat(
            "expected an AnnData .h5ad (HDF5) or a Space Ranger folder as .tar.gz, .tar or .zip"
        )
    try:
        plan_archive(path, max_bytes if max_bytes is not None else 2**62, max_members, max_ratio)
    except UnsupportedFormat as e:  # an archive of the wrong content: not the request's format
        raise InputError(e.detail, code="not_spaceranger") from e
    return fmt


def display_name(filename: str | None) -> str:
    """The client's file name for display only: NFC, no control/format/bidi characters, no
    directories. It never reaches a storage key (keys are ``uploads/{tenant}/{uuid}``)."""
    name = unicodedata.normalize("NFC", filename or "")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = PurePosixPath(name.replace("\\", "/")).name.strip()
    return (name if name not in ("", ".", "..") else "upload")[:255]


async def receive_upload(
    session: AsyncSession,
    store: ObjectStore,
    settings: Settings,
    tenant_id: str,
    filename: str,
    chunks: AsyncIterator[bytes],
    declared_length: int | None,
) -> Upload:
    """Stream ``chunks`` to storage and record the upload (not committed)."""
    limit = settings.max_upload_bytes
    if declared_length is not None and declared_length > limit:
        raise UploadTooLarge(
            f"upload of {declared_length:,} bytes is over the limit of {limit:,} bytes"
        )
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=upload_temp_prefix())
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            buf: list[bytes] = []
            pending = 0

            def flush(parts: list[bytes]) -> None:
                for p in parts:
                    digest.update(p)
                    fh.write(p)

            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"upload is over the limit of {limit:,} bytes")
                buf.append(chunk)
                pending += len(chunk)
                if pending >= _FLUSH:
                    parts, buf, pending = buf, [], 0
                    await anyio.to_thread.run_sync(flush, parts)
            await anyio.to_thread.run_sync(flush, buf)
        if size == 0:
            raise InputError("empty upload", code="empty_upload")
        fmt = await anyio.to_thread.run_sync(
            sniff_format,
            tmp,
            settings.max_extract_members,
            settings.max_extract_bytes,
            settings.max_extract_ratio,
        )
        upload_id = uuid.uuid4()
        key = f"uploads/{tenant_id}/{upload_id}"
        await anyio.to_thread.run_sync(store.put_file, key, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    upload = Upload(
        id=upload_id,
        tenant_id=tenant_id,
        filename=display_name(filename),
        format=fmt,
        size=size,
        sha256=digest.hexdigest(),
        storage_key=key,
    )
    session.add(upload)
    try:
        await session.flush()
    except BaseException:  # the database is gone (503): the stored object would be garbage
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(store.delete, key)
        raise
    return upload
