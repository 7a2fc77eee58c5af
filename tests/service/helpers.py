"""Helpers shared by the service tests."""

from __future__ import annotations

import asyncio
import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VISIUM_DIR = DATA / "visium_10x_v1_subset"
BRAIN_H5AD = DATA / "visium_mouse_brain_subset.h5ad"


def client(base: str, auth: str | None) -> httpx.Client:
    headers = {"Authorization": auth} if auth else {}
    return httpx.Client(base_url=base, headers=headers, timeout=60)


def spaceranger_targz(folder: Path = VISIUM_DIR) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(folder, arcname="outs")
    return buf.getvalue()


def upload(c: httpx.Client, data: bytes, filename: str = "sample.h5ad") -> httpx.Response:
    return c.post(
        "/v1/uploads",
        params={"filename": filename},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


def submit_test_job(
    env: dict[str, str],
    tenant: str,
    upload_id: str,
    options: dict[str, Any],
    callback_url: str | None = None,
    **settings_overrides: Any,
) -> str:
    """Submit a TEST-ONLY 'test_sleep' job through the real submit use case (not exposed over HTTP)."""
    from core.db.session import make_async_engine, make_async_sessionmaker
    from core.jobs import service
    from tests.service import sleep_job
    from tests.service.conftest import settings_from

    settings = settings_from(env).model_copy(update=settings_overrides)

    async def go() -> str:
        engine = make_async_engine(env["MGS_DATABASE_URL"], pool_size=1)
        try:
            async with make_async_sessionmaker(engine)() as s:
                job, _ = await service.submit_job(
                    s,
                    settings,
                    tenant,
                    service.SubmitRequest(
                        uuid.UUID(upload_id),
                        "test",
                        options,
                        callback_url,
                        sleep_job.KIND,
                    ),
                    None,
                )
                await s.commit()
                return str(job.id)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def tenant_of(key: str, env: dict[str, str]) -> str:
    import hashlib

    import psycopg

    url = env["MGS_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT tenant_id FROM api_keys WHERE key_hash = %s",
            (hashlib.sha256(key.encode()).hexdigest(),),
        ).fetchone()
    assert row
    return str(row[0])
