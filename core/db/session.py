"""Engine and session factories, called at start-up (never at import).

Every engine pre-pings pooled connections (the first request after a database restart
succeeds instead of using a dead connection) and connects with a timeout of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker


def _connect_args(url: str, connect_timeout_s: float | None) -> dict[str, Any]:
    if not connect_timeout_s or not url.startswith("postgresql"):
        return {}
    return {"connect_timeout": max(2, round(connect_timeout_s))}  # libpq: whole seconds, >= 2


def make_async_engine(
    url: str,
    pool_size: int = 10,
    autocommit: bool = False,
    connect_timeout_s: float | None = 5.0,
) -> AsyncEngine:
    """The API's engine (psycopg 3, async); ``autocommit`` for read-only sessions."""
    kwargs: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args=_connect_args(url, connect_timeout_s),
        **kwargs,
    )


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_sync_engine(url: str, pool_size: int = 2, connect_timeout_s: float | None = 5.0) -> Engine:
    """A worker's (or the relay's, or the CLI's) engine."""
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=2,
        pool_pre_ping=True,
        connect_args=_connect_args(url, connect_timeout_s),
    )


def make_sync_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
