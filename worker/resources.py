"""Per-process resources of a worker: engine, sessions, object store (made once per process)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.config import Settings, get_settings
from core.storage import ObjectStore


@dataclass
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    worker_id: str

    @contextlib.contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        with self.sessions() as s, s.begin():
            yield s


_resources: Resources | None = None


def init() -> Resources:
    global _resources
    if _resources is None or _resources.worker_id != _worker_id():
        from core.db.session import make_sync_engine, make_sync_sessionmaker
        from core.storage import open_store

        settings = worker_settings(get_settings())
        engine = make_sync_engine(settings.database_url)
        _resources = Resources(
            settings, make_sync_sessionmaker(engine), open_store(settings), _worker_id()
        )
    return _resources


def worker_settings(settings: Settings) -> Settings:
    """A worker never downloads model weights unless ``MGS_MODEL_ALLOW_DOWNLOAD=true``: one tenant's
    job must not keep the shared report worker busy fetching a model (issue 18). The Hugging Face
    libraries are put offline too, for any other path that would reach the Hub."""
    if settings.model_allow_download is not True:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        return settings.model_copy(update={"model_allow_download": False})
    return settings


def get() -> Resources:
    return init()


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
