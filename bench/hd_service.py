#!/usr/bin/env python3
"""A whole Visium HD capture area through the job service: upload, validate, analyse, report.

Starts a throwaway stack on loopback (a new Postgres database, the API with local file
storage, the outbox relay, an analysis worker whose analysis subprocess is limited to
``--analysis-memory-mb`` of address space, and a report worker with the template backend),
streams the sample up with ``POST /v1/uploads``, submits a job and polls it to the end.
Optionally streams one more upload of ``--extra-upload-gb`` GiB first (an HDF5 file of
random floats) to show that the API's memory does not grow with the upload's size.

Prints one JSON object: upload seconds and MiB/s, the API's peak RSS during each upload,
the analysis worker's peak RSS (worker and its subprocesses), the job's final state,
wall time, stage times and the report's presence.

    python bench/hd_service.py --sample hd650k.h5ad --analysis-memory-mb 4096 --extra-upload-gb 4

Needs Postgres and Redis (MGS_TEST_PG_ADMIN, MGS_BROKER_URL; defaults on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_api import ROOT, make_h5ad_like, rss_mb, start_stack, tree_pids


class PeakRSS:
    """Largest summed RSS of a process tree, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop:
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, sum(rss_mb(p) for p in tree_pids(self.pid)))
            time.sleep(0.1)

    def stop(self) -> float:
        self._stop = True
        self._t.join()
        return round(self.peak, 1)


def upload(base: str, key: str, path: Path, name: str) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=3600) as c,
        open(path, "rb") as fh,
    ):
        r = c.post(
            "/v1/uploads",
            params={"filename": name},
            content=fh,
            headers={
                "content-type": "application/octet-stream",
                "content-length": str(path.stat().st_size),
            },
        )
    if r.status_code != 201:
        raise SystemExit(f"upload of {path.name} failed: {r.status_code} {r.text[:500]}")
    return r.json(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sample",
        type=Path,
        required=True,
        help="an .h5ad (e.g. synth.py --layout hd --spots 650000)",
    )
    ap.add_argument("--analysis-memory-mb", type=int, default=4096)
    ap.add_argument("--extra-upload-gb", type=float, default=0.0)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mgs-hd-service-"))
    procs: list[subprocess.Popen[bytes]] = []
    db = None
    out: dict[str, Any] = {
        "sample": args.sample.name,
        "sample_bytes": args.sample.stat().st_size,
        "analysis_memory_mb": args.analysis_memory_mb,
    }
    try:
        base, key, api, env, db = start_stack(tmp, 1)
        procs.append(api)
        env = {
            **env,
            "MGS_BROKER_URL": os.environ.get("MGS_BROKER_URL", "redis://127.0.0.1:6379/4"),
            "MGS_ANALYSIS_MEMORY_MB": str(args.analysis_memory_mb),
            "MGS_REPORT_BACKEND": "template",
        }
        logs = tmp / "logs"
        logs.mkdir()

        def start(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
            fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
            p = subprocess.Popen(
                [sys.executable, "-m", "cli", *cmd],
                env=env,
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
            procs.append(p)
            return p

        start("relay", ["relay"])
        worker = start(
            "analysis",
            ["worker", "--queues", "analysis", "--pool", "solo", "--loglevel", "warning"],
        )
        start("report", ["worker", "--queues", "report", "--pool", "solo", "--loglevel", "warning"])

        if args.extra_upload_gb:
            big = tmp / "big.h5ad"
            make_h5ad_like(big, int(args.extra_upload_gb * 1024))
            watch = PeakRSS(api.pid)
            before = sum(rss_mb(p) for p in tree_pids(api.pid))
            _, secs = upload(base, key, big, "big.h5ad")
            out["extra_upload"] = {
                "bytes": big.stat().st_size,
                "seconds": round(secs, 1),
                "mib_per_s": round(big.stat().st_size / 2**20 / secs, 1),
                "api_rss_before_mb": round(before, 1),
                "api_rss_peak_mb": watch.stop(),
            }
            big.unlink()

        watch = PeakRSS(api.pid)
        up, secs = upload(base, key, args.sample, args.sample.name)
        out["upload"] = {
            "seconds": round(secs, 1),
            "mib_per_s": round(args.sample.stat().st_size / 2**20 / secs, 1),
            "api_rss_peak_mb": watch.stop(),
        }

        wwatch = PeakRSS(worker.pid)
        t0 = time.perf_counter()
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            job = c.post(
                "/v1/jobs",
                json={"upload_id": up["id"], "options": {"backend": "template", "seed": 0}},
            )
            if job.status_code not in (200, 201, 202):
                raise SystemExit(f"submit failed: {job.status_code} {job.text[:500]}")
            jid = job.json()["id"]
            state: dict[str, Any] = {}
            while time.perf_counter() - t0 < args.timeout:
                state = c.get(f"/v1/jobs/{jid}").json()
                if state["state"] in ("succeeded", "failed", "canceled"):
                    break
                time.sleep(1.0)
            out["job"] = {
                "state": state.get("state"),
                "error": state.get("error"),
                "wall_s": round(time.perf_counter() - t0, 1),
                "analysis_worker_peak_rss_mb": wwatch.stop(),
                "timings_s": (state.get("provenance") or {}).get("analysis", {}).get("timings"),
                "n_obs": (state.get("provenance") or {}).get("validation", {}).get("n_obs"),
            }
            if state.get("state") == "succeeded":
                rep = c.get(f"/v1/jobs/{jid}/report", params={"format": "markdown"})
                out["job"]["report_markdown_bytes"] = (
                    len(rep.content) if rep.status_code == 200 else None
                )
            else:
                out["logs"] = {
                    p.name: p.read_text(errors="replace")[-2000:] for p in logs.iterdir()
                }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if db is not None:
            import psycopg

            admin = os.environ.get("MGS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
