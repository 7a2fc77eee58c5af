"""Security suite: reuses the service fixtures (throwaway Postgres db, Redis db, moto S3,
live API subprocess). Skips cleanly when Postgres or Redis is unreachable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

import contextlib

from tests.service.conftest import (  # noqa: F401  (fixtures re-exported)
    _reachable,
    api,
    pg_url,
    redis_url,
    s3_server,
    service_env,
    sink,
    tenant_a,
    tenant_b,
)


def pytest_addoption(parser: Any) -> None:
    with contextlib.suppress(ValueError):
        parser.addoption("--long", action="store_true", default=False, help="bigger counts")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    here = str(Path(__file__).parent)
    missing = [
        n for n, p in (("Postgres", 5432), ("Redis", 6379)) if not _reachable("127.0.0.1", p)
    ]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.service)
            if missing:
                item.add_marker(
                    pytest.mark.skip(reason=f"{' and '.join(missing)} not reachable on 127.0.0.1")
                )


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long", default=False))
