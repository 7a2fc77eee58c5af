"""Engine and session factories, called at start-up (never at import)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker


def make_async_engine(url: str, pool_size: int = 10, autocommit: bool = False) -> AsyncEngine:
    """The API's engine (psycopg 3, async); ``autocommit`` for read-only sessions."""
    kwargs = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, **kwargs)


def make_async_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_sync_engine(url: str, pool_size: int = 2) -> Engine:
    """A worker's (or the relay's, or the CLI's) engine."""
    return create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)


def make_sync_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
