"""API keys: ``mgs_<prefix>_<secret>``, stored as sha256 (keys are high-entropy random)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from core.db import repositories as repo
from core.db.models import ApiKey, KeyRole, Tenant
from core.errors import BadOption
from core.jobs.errors import NotFound, Unauthorized

TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's tenant, the key's id and its role."""

    tenant_id: str
    key_id: uuid.UUID
    role: str


def create_key(
    session: Session, tenant_id: str, role: str = KeyRole.SUBMITTER.value
) -> tuple[str, Tenant]:
    """Make a key for ``tenant_id`` (creating the tenant and its webhook secret if new).

    ``role``: ``submitter`` (upload, submit, read) or ``reviewer`` (also sign reports).
    """
    if not TENANT_RE.match(tenant_id):
        raise BadOption(f"tenant {tenant_id!r}: letters, digits, '_', '.', '-' only (max 64)")
    if role not in {r.value for r in KeyRole}:
        raise BadOption(
            f"role {role!r}: one of {', '.join(r.value for r in KeyRole)}", code="invalid_role"
        )
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = Tenant(id=tenant_id, webhook_secret=new_webhook_secret())
        session.add(tenant)
        session.flush()
    prefix = secrets.token_hex(4)
    key = f"mgs_{prefix}_{secrets.token_urlsafe(32)}"
    session.add(ApiKey(tenant_id=tenant_id, prefix=prefix, key_hash=hash_key(key), role=role))
    session.flush()
    return key, tenant


def revoke_key(session: Session, key_or_prefix: str) -> None:
    """Revoke by the full key or by its prefix (the 8 hex digits after ``mgs_``)."""
    m = re.match(r"^mgs_([0-9a-f]{8})_", key_or_prefix)
    prefix = m.group(1) if m else key_or_prefix
    if session.execute(repo.revoke_key(prefix)).rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"no active key with prefix {prefix}")


_auth_cache: dict[str, tuple[float, Caller]] = {}


async def authenticate(
    session: AsyncSession, authorization: str | None, cache_s: float = 0.0
) -> str:
    """The tenant of a ``Bearer`` key, or :class:`Unauthorized` (see :func:`authenticate_caller`)."""
    return (await authenticate_caller(session, authorization, cache_s)).tenant_id


async def authenticate_caller(
    session: AsyncSession, authorization: str | None, cache_s: float = 0.0
) -> Caller:
    """The :class:`Caller` of a ``Bearer`` key, or :class:`Unauthorized`.

    With ``cache_s`` > 0 a known key's tenant is remembered that long in this
    process (a revocation takes effect within ``cache_s``); unknown keys never are.
    """
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("missing bearer token (Authorization: Bearer <key>)")
    digest = hash_key(authorization[7:].strip())
    now = time.monotonic()
    hit = _auth_cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = (await session.execute(*repo.tenant_for_key_hash(digest))).one_or_none()
    if row is None:
        _auth_cache.pop(digest, None)
        raise Unauthorized("unknown or revoked API key")
    caller = Caller(tenant_id=row[0], key_id=row[1], role=row[2])
    if cache_s > 0:
        if len(_auth_cache) > 10_000:
            _auth_cache.clear()
        _auth_cache[digest] = (now + cache_s, caller)
    return caller


def webhook_secret(session: Session, tenant_id: str) -> str:
    return session.execute(select(Tenant.webhook_secret).where(Tenant.id == tenant_id)).scalar_one()
