"""Leftovers of interrupted uploads: temp files of the API and incomplete multipart uploads.

An upload is streamed to ``mgs-upload-{pid}-*`` in the temp folder, then copied to object
storage (multipart for large files). A process killed in between leaves both behind; the
API sweeps temp files at start and periodically, the relay aborts stale multipart uploads
and deletes resumable upload sessions idle for ``MGS_UPLOAD_SESSION_TTL_S`` with their chunks.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from core.storage import ObjectStore

log = logging.getLogger(__name__)

PREFIX = "mgs-upload-"
_PID = re.compile(rf"^{PREFIX}(\d+)-")


def upload_temp_prefix() -> str:
    """The temp file prefix of this process's uploads (its pid tells the sweep who owns it)."""
    return f"{PREFIX}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_upload_temp(
    older_than_s: float, folder: str | Path | None = None, *, at_start: bool = False
) -> list[Path]:
    """Delete upload temp files whose process is gone, or older than ``older_than_s``.

    ``at_start``: this process has received nothing yet, so files named with its own pid
    (a container restarted with the same pid) are a previous life's.
    """
    root = Path(folder or tempfile.gettempdir())
    cutoff = time.time() - older_than_s
    removed = []
    for p in root.glob(f"{PREFIX}*"):
        try:
            m = _PID.match(p.name)
            pid = int(m.group(1)) if m else None
            orphan = pid is not None and (
                (pid == os.getpid() and at_start) or (pid != os.getpid() and not _alive(pid))
            )
            if p.is_file() and (orphan or p.stat().st_mtime < cutoff):
                p.unlink()
                removed.append(p)
        except (OSError, ValueError):
            continue
    if removed:
        log.info("removed %d stale upload temp file(s) from %s", len(removed), root)
    return removed


def sweep_store(store: object, settings: Settings) -> int:
    """Abort incomplete multipart uploads older than ``MGS_STALE_UPLOAD_S`` (never raises)."""
    try:
        n = int(store.abort_stale_uploads(settings.stale_upload_s))  # type: ignore[attr-defined]
    except Exception as e:
        log.warning("sweep of stale multipart uploads failed: %r", e)
        return 0
    if n:
        log.info("aborted %d stale multipart upload(s)", n)
    return n


def sweep_upload_sessions(
    sessions: sessionmaker[Session], store: ObjectStore, settings: Settings
) -> int:
    """Delete idle resumable upload sessions and their chunks (never raises).

    ``sessions``: a sync sessionmaker (the relay's).
    """
    from core.jobs.upload_sessions import expire_sessions

    try:
        with sessions() as s, s.begin():
            n = expire_sessions(s, store, settings)
    except Exception as e:
        log.warning("sweep of idle upload sessions failed: %r", e)
        return 0
    if n:
        log.info("deleted %d idle upload session(s)", n)
    return n
