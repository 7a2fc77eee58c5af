"""Resumable uploads: a session receives a large file in fixed-size chunks, in order.

Each chunk is streamed to a temp file, then stored as its own object
(``upload-sessions/{tenant}/{session}/{start:016d}``), so any API replica can take the next
chunk and a dropped connection costs one chunk, not the whole file. ``complete`` streams the
chunks back, in order, through :func:`core.jobs.uploads.receive_upload`: the same size
limit, hashing, format sniffing and preflight as a one-shot upload, and the same Upload row.

Protocol: every chunk but the last is exactly ``chunk_size`` bytes and starts where the
received bytes end. A chunk already received, re-sent with the same range, is accepted and
changes nothing (a retry whose answer was lost); any other range is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import repositories as repo
from core.db.models import Upload, UploadSession
from core.errors import InputError
from core.jobs.cleanup import upload_temp_prefix
from core.jobs.errors import (
    BadContentRange,
    ChunkLengthMismatch,
    Conflict,
    UploadRangeConflict,
    UploadSessionNotFound,
    UploadTooLarge,
)
from core.jobs.uploads import display_name, receive_upload
from core.storage import ObjectStore

_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\d{1,19})$")


def parts_prefix(s: UploadSession) -> str:
    """Where a session's chunks are kept (deleted once completed or expired)."""
    return f"upload-sessions/{s.tenant_id}/{s.id}/"


def part_key(s: UploadSession, start: int) -> str:
    return f"{parts_prefix(s)}{start:016d}"


async def create_session(
    session: AsyncSession, settings: Settings, tenant_id: str, filename: str, total_size: int
) -> UploadSession:
    """A new session for ``total_size`` bytes (not committed); refused over the upload limit."""
    if total_size <= 0:
        raise InputError("empty upload", code="empty_upload")
    if total_size > settings.max_upload_bytes:
        raise UploadTooLarge(
            f"upload of {total_size:,} bytes is over the limit of "
            f"{settings.max_upload_bytes:,} bytes"
        )
    s = UploadSession(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        filename=display_name(filename),
        total_size=total_size,
        chunk_size=settings.upload_chunk_bytes,
        received=0,
    )
    session.add(s)
    await session.flush()
    await session.refresh(s)
    return s


async def get_session(
    session: AsyncSession, tenant_id: str, session_id: uuid.UUID, *, lock: bool = False
) -> UploadSession:
    """A tenant's session; another tenant's is not found."""
    s: UploadSession | None = (
        await session.execute(repo.upload_session_of_tenant(session_id, tenant_id, lock=lock))
    ).scalar_one_or_none()
    if s is None:
        if (
            lock
            and (
                await session.execute(repo.upload_session_of_tenant(session_id, tenant_id))
            ).scalar_one_or_none()
        ):
            raise Conflict(
                "this upload session is being completed by another request",
                code="upload_session_busy",
            )
        raise UploadSessionNotFound("no such upload session")
    return s


def parse_content_range(header: str | None, s: UploadSession) -> tuple[int, int]:
    """``bytes a-b/total`` → ``(a, b + 1)``, checked against the session's size and chunking."""
    m = _RANGE.match((header or "").strip())
    if m is None:
        raise BadContentRange("a chunk needs 'Content-Range: bytes FIRST-LAST/TOTAL'")
    first, last, total = (int(g) for g in m.groups())
    if total != s.total_size:
        raise BadContentRange(
            f"Content-Range total {total:,} is not the session's size {s.total_size:,}"
        )
    if first > last or last >= total:
        raise BadContentRange(f"bytes {first}-{last} is not a range inside 0-{total - 1}")
    if first % s.chunk_size or last + 1 != min(first + s.chunk_size, total):
        raise BadContentRange(
            f"chunks are {s.chunk_size:,} bytes (the last one shorter) starting at multiples "
            f"of {s.chunk_size:,}; bytes {first}-{last} is not one"
        )
    return first, last + 1


async def _spool(chunks: AsyncIterator[bytes], expected: int) -> Path:
    """The body in a temp file (exactly ``expected`` bytes, or refused)."""
    fd, name = tempfile.mkstemp(prefix=upload_temp_prefix())
    tmp = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > expected:
                    raise ChunkLengthMismatch(
                        f"the chunk's body is longer than its range ({expected:,} bytes)"
                    )
                await anyio.to_thread.run_sync(fh.write, chunk)
        if size != expected:
            raise ChunkLengthMismatch(
                f"the chunk's body has {size:,} bytes; its range names {expected:,}"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


async def receive_chunk(
    session: AsyncSession,
    store: ObjectStore,
    tenant_id: str,
    session_id: uuid.UUID,
    content_range: str | None,
    chunks: AsyncIterator[bytes],
) -> UploadSession:
    """Store one chunk and advance the session (not committed)."""
    s = await get_session(session, tenant_id, session_id)
    if s.upload_id is not None:
        raise Conflict("this upload session is already complete", code="upload_session_completed")
    start, end = parse_content_range(content_range, s)
    if end <= s.received:  # a re-sent chunk we have: read (no more than it) and drop the body
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > end - start:
                break
        if size != end - start:
            raise ChunkLengthMismatch(
                f"the chunk's body is not the {end - start:,} bytes its range names"
            )
        return s
    if start != s.received:
        raise UploadRangeConflict(
            f"the next chunk starts at byte {s.received:,}, not {start:,} (GET the session "
            "to resume)"
        )
    tmp = await _spool(chunks, end - start)
    try:
        await anyio.to_thread.run_sync(store.put_file, part_key(s, start), tmp)
    finally:
        tmp.unlink(missing_ok=True)
    result = await session.execute(repo.advance_upload_session(s.id, start, end))
    moved = result.rowcount  # type: ignore[attr-defined]
    await session.refresh(s)
    if not moved and (s.received < end or s.upload_id is not None):
        raise UploadRangeConflict(
            f"the session changed while the chunk arrived; it has {s.received:,} bytes"
        )
    return s


async def _stored_parts(store: ObjectStore, s: UploadSession) -> AsyncIterator[bytes]:
    """The session's chunks from storage, in order, as one byte stream."""
    n = 0
    for start in range(0, s.total_size, s.chunk_size):
        it = store.iter_bytes(part_key(s, start))
        while True:
            b = await anyio.to_thread.run_sync(next, it, None)
            if b is None:
                break
            n += len(b)
            yield b
    if n != s.total_size:
        raise Conflict(
            f"the stored chunks hold {n:,} bytes, not {s.total_size:,}", code="upload_incomplete"
        )


async def complete_session(
    session: AsyncSession,
    store: ObjectStore,
    settings: Settings,
    tenant_id: str,
    session_id: uuid.UUID,
) -> tuple[Upload, bool]:
    """The Upload made from a complete session (not committed), and whether it is new.

    A session completed before answers its upload again; one still missing bytes is refused.
    """
    s = await get_session(session, tenant_id, session_id, lock=True)
    if s.upload_id is not None:
        done = (await session.execute(repo.upload_of_tenant(s.upload_id, tenant_id))).scalar_one()
        return done, False
    if s.received != s.total_size:
        raise Conflict(
            f"the session has {s.received:,} of {s.total_size:,} bytes; send the rest first",
            code="upload_incomplete",
        )
    upload = await receive_upload(
        session, store, settings, tenant_id, s.filename, _stored_parts(store, s), s.total_size
    )
    s.upload_id = upload.id
    await session.flush()
    return upload, True


async def discard_parts(store: ObjectStore, s: UploadSession) -> None:
    """Delete a completed session's chunks (never raises: the sweep gets what is left)."""
    with contextlib.suppress(Exception):
        await anyio.to_thread.run_sync(store.delete_prefix, parts_prefix(s))


def expire_sessions(db: Session, store: ObjectStore, settings: Settings) -> int:
    """Delete sessions idle for ``MGS_UPLOAD_SESSION_TTL_S`` and their chunks (sync; the
    relay's sweep). Returns how many went."""
    n = 0
    for s in db.execute(repo.stale_upload_sessions(settings.upload_session_ttl_s)).scalars():
        store.delete_prefix(parts_prefix(s))
        db.delete(s)
        n += 1
    db.flush()
    return n
