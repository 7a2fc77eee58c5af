"""Request dependencies: the session, the object store, the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from api.ratelimit import check_rate
from core.config import Settings
from core.jobs.keys import Caller, authenticate_caller, hash_key
from core.storage import ObjectStore

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer mgs_...`")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session without a transaction (autocommit), for reads only."""
    async with request.app.state.read_sessionmaker() as session:
        yield session


def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def current_caller(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_read_session)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The key's tenant, id and role (401 without a valid key; 429 over the rate limit)."""
    header = f"Bearer {creds.credentials}" if creds else None
    settings: Settings = request.app.state.settings
    caller = await authenticate_caller(session, header, settings.auth_cache_s)
    assert creds is not None  # authenticate_caller refused a missing key
    await check_rate(
        request.app.state.redis, hash_key(creds.credentials), settings.rate_limit_per_minute
    )
    return caller


async def current_tenant(caller: Annotated[Caller, Depends(current_caller)]) -> str:
    return caller.tenant_id


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
TenantDep = Annotated[str, Depends(current_tenant)]
CallerDep = Annotated[Caller, Depends(current_caller)]
