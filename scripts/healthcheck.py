"""Container healthchecks: ``python -m scripts.healthcheck {api|worker QUEUES|relay|migrated}``.

Exit 0 when healthy, 1 otherwise (one line on stderr says why). Used by the
images' ``HEALTHCHECK`` and by ``docker-compose.yml``; standard library plus what
every service image already has (SQLAlchemy, Celery).

- ``api``: ``GET /readyz`` on the local port (Postgres, Redis and storage reachable).
- ``worker QUEUES``: this container's Celery node (``QUEUES@hostname``, the name
  ``medgemma-spatial worker --queues QUEUES`` gives it) answers a ping.
- ``relay``: Postgres answers and no outbox message has been due for longer than
  ``MGS_HEALTH_OUTBOX_LAG_S`` (default 300 s) — a relay that stopped publishing.
- ``migrated``: the database is at the newest Alembic revision.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request


def check_api(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=4) as r:
            return None if r.status == 200 else f"readyz answered {r.status}"
    except urllib.error.HTTPError as e:
        return f"readyz answered {e.code}: {e.read()[:200]!r}"
    except OSError as e:
        return f"API unreachable: {e}"


def check_worker(queues: str) -> str | None:
    from worker.celery_app import app

    node = f"{queues.replace(',', '+')}@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=4.0)
    return None if replies else f"celery node {node} did not answer a ping"


def check_relay(max_lag_s: float) -> str | None:
    from sqlalchemy import create_engine, text

    from core.config import get_settings

    engine = create_engine(get_settings().database_url, pool_pre_ping=False)
    try:
        with engine.connect() as c:
            lag = c.execute(
                text(
                    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - MIN(available_at)), 0) FROM outbox"
                    " WHERE sent_at IS NULL AND dead_at IS NULL AND available_at <= now()"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return None if float(lag) <= max_lag_s else f"outbox message due for {float(lag):.0f} s"


def check_migrated() -> str | None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from core.config import get_settings
    from core.db.migrate import alembic_config

    url = get_settings().database_url
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            current = set(MigrationContext.configure(c).get_current_heads())
    finally:
        engine.dispose()
    return None if current == heads else f"database at {sorted(current)}, code at {sorted(heads)}"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    kind = argv[0]
    try:
        if kind == "api":
            problem = check_api(int(argv[1]) if len(argv) > 1 else 8000)
        elif kind == "worker" and len(argv) == 2:
            problem = check_worker(argv[1])
        elif kind == "relay":
            problem = check_relay(float(os.environ.get("MGS_HEALTH_OUTBOX_LAG_S", "300")))
        elif kind == "migrated":
            problem = check_migrated()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as e:  # any failure to check is unhealthy
        problem = f"{type(e).__name__}: {e}"
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
