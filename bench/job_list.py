"""The console's job list at scale: keyset pages of one lab among many jobs, straight on
Postgres (the queries ``GET /v1/jobs`` runs, built by ``core.db.repositories.list_jobs``).

    python bench/job_list.py --jobs 200000 --labs 4

Makes a throwaway database, migrates it to head, fills it with ``--jobs`` jobs spread over
``--labs`` labs (states, report statuses and creation times mixed), then times a page of 50
(median of ``--repeat`` runs) on page 1, deep in the list (a cursor half way) and at the end,
newest first and oldest first, and filtered by report status and by state, and prints the
plan's index for each. Prints one JSON object. Needs Postgres (``--pg``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text

from core.db import repositories as repo
from core.db.migrate import upgrade
from core.db.session import make_sync_engine


def fill(url: str, n: int, labs: int) -> tuple[str, list[tuple[datetime, uuid.UUID]]]:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    states = ["succeeded"] * 6 + ["failed", "canceled", "queued", "running"]
    with psycopg.connect(url) as c:
        for lab in range(labs):
            c.execute("INSERT INTO tenants (id, webhook_secret) VALUES (%s, 's')", (f"lab{lab}",))
        c.execute(
            "INSERT INTO uploads (id, tenant_id, filename, format, size, sha256, storage_key)"
            " VALUES (%s, 'lab0', 'x.h5ad', 'h5ad', 1, '0', 'k')",
            (uuid.UUID(int=1),),
        )
        with (
            c.cursor() as cur,
            cur.copy(
                "COPY jobs (id, tenant_id, upload_id, kind, external_sample_id, options, state, stage,"
                " progress, attempts, stage_attempts, max_attempts, transient_tries, timings, summary,"
                " report_status, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for i in range(n):
                state = states[i % len(states)]
                signed = (
                    ("final", "amended", None, None)[(i // labs) % 4]
                    if state == "succeeded"
                    else None
                )
                ts = t0 + timedelta(seconds=30 * i)
                copy.write_row(
                    (
                        uuid.uuid4(),
                        f"lab{i % labs}",
                        uuid.UUID(int=1),
                        "spatial",
                        f"S-{i:07d}",
                        "{}",
                        state,
                        "reporting",
                        1.0,
                        2,
                        1,
                        3,
                        0,
                        "{}",
                        "{}",
                        signed,
                        ts,
                        ts,
                    )
                )
        c.execute("ANALYZE jobs")
        keys = c.execute(
            "SELECT created_at, id FROM jobs WHERE tenant_id = 'lab0' ORDER BY created_at DESC, id DESC"
        ).fetchall()
    return "lab0", [(k[0], k[1]) for k in keys]


def timed(engine: Any, q: Any, repeat: int) -> dict[str, Any]:
    with engine.connect() as conn:
        compiled = q.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        plan = conn.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
        times = []
        rows = 0
        for _ in range(repeat):
            t = time.perf_counter()
            rows = len(conn.execute(q).all())
            times.append((time.perf_counter() - t) * 1000)
    indexes = sorted({n["Index Name"] for n in _nodes(plan[0]["Plan"]) if "Index Name" in n})
    return {"ms_median": round(statistics.median(times), 2), "rows": rows, "indexes": indexes}


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out += _nodes(child)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=200_000)
    ap.add_argument("--labs", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    db = f"bench_joblist_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    url = args.pg.rsplit("/", 1)[0] + "/" + db
    try:
        upgrade(url.replace("postgresql://", "postgresql+psycopg://"))
        tenant, keys = fill(url, args.jobs, args.labs)
        engine = make_sync_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        base = dict(
            state=None, external_sample_id=None, created_after=None, created_before=None, limit=51
        )
        mid, end = keys[len(keys) // 2], keys[-60]
        cases = {
            "page 1, newest first": repo.list_jobs(tenant, cursor=None, **base),
            "half way, newest first": repo.list_jobs(tenant, cursor=mid, **base),
            "last page, newest first": repo.list_jobs(tenant, cursor=end, **base),
            "half way, oldest first": repo.list_jobs(tenant, cursor=mid, oldest_first=True, **base),
            "report_status=final, half way": repo.list_jobs(
                tenant, cursor=mid, report_status="final", **base
            ),
            "report_status=preliminary, page 1": repo.list_jobs(
                tenant, cursor=None, report_status="preliminary", **base
            ),
            "state=failed, half way": repo.list_jobs(
                tenant, cursor=mid, **{**base, "state": "failed"}
            ),
        }
        out = {
            "jobs": args.jobs,
            "labs": args.labs,
            "jobs_of_the_lab": len(keys),
            "page_size": 50,
            "repeat": args.repeat,
            "cases": {k: timed(engine, q, args.repeat) for k, q in cases.items()},
        }
        engine.dispose()
        print(json.dumps(out, indent=1))
    finally:
        with psycopg.connect(args.pg, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


if __name__ == "__main__":
    main()
