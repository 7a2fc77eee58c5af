"""Load benchmark of the API on loopback: many clients polling job status while others upload
large files. Reports p50/p99 of ``GET /v1/jobs/{id}`` and the API's peak RSS during uploads.

    python bench/load_api.py --start --pollers 200 --uploaders 20 --upload-mb 200 --duration 60

``--start`` makes a throwaway database, migrates it, creates a key and starts
``medgemma-spatial serve`` (local storage in a temp dir); otherwise pass
``--base-url``, ``--api-key`` and ``--api-pid``. Prints one JSON object; figures
go in the README's service section. Needs Postgres and Redis (MGS_* settings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (libraries mapped by several workers) split among
    the processes that map them, so a sum over a process group counts each page once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_pids(pid: int) -> list[int]:
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += tree_pids(int(k))
    return out


def make_h5ad_like(path: Path, mb: int) -> None:
    """An HDF5 file with obs/var groups (passes the upload sniff) and ``mb`` MiB of data."""
    import h5py
    import numpy as np

    with h5py.File(path, "w") as f:
        f.create_group("obs")
        f.create_group("var")
        d = f.create_dataset("X", shape=(mb * 1024 * 1024 // 4,), dtype="f4")
        step = 16 * 1024 * 1024 // 4
        rng = np.random.default_rng(0)
        for i in range(0, d.shape[0], step):
            d[i : i + step] = rng.random(min(step, d.shape[0] - i), dtype=np.float32)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def poller(
    base: str,
    key: str,
    job_ids: list[str],
    stop: float,
    lat: list[float],
    errs: list[int],
    interval: float,
) -> None:
    """One client on one keep-alive connection (a minimal HTTP/1.1 client: the load
    generator shares the machine's two cores with the API, so it must be cheap)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    i = random.randrange(len(job_ids))
    await asyncio.sleep(random.uniform(0, interval))  # clients don't poll in lockstep
    try:
        while time.perf_counter() < stop:
            jid = job_ids[i % len(job_ids)]
            i += 1
            req = f"GET /v1/jobs/{jid} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
            t0 = time.perf_counter()
            writer.write(req.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errs.append(status)
            if interval:
                await asyncio.sleep(interval)
    finally:
        writer.close()


def uploader(
    base: str, key: str, path: Path, stop: float, done: list[float], errs: list[int]
) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as c:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            with open(path, "rb") as fh:
                r = c.post(
                    "/v1/uploads",
                    params={"filename": "big.h5ad"},
                    content=fh,
                    headers={
                        "content-type": "application/octet-stream",
                        "content-length": str(path.stat().st_size),
                    },
                )
            if r.status_code == 201:
                done.append(time.perf_counter() - t0)
            else:
                errs.append(r.status_code)
            break  # one upload per uploader


def start_stack(
    tmp: Path, workers: int
) -> tuple[str, str, subprocess.Popen[bytes], dict[str, str], str]:
    import psycopg

    admin = os.environ.get("MGS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
    db = f"mgs_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    env = {
        **os.environ,
        "MGS_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        "MGS_STORAGE_URL": f"file://{tmp}/store",
        "MGS_MAX_UPLOAD_BYTES": str(1 << 40),
        "MGS_RATE_LIMIT_PER_MINUTE": "0",  # the load test measures the service, not the limiter
        "MGS_MAX_CONCURRENT_JOBS_PER_TENANT": "0",
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-m", "cli", "db", "upgrade"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "create", "--tenant", "bench"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    key = dict(line.split(": ", 1) for line in out.strip().splitlines())["api_key"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return base, key, proc, env, db


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mgs-bench-"))
    proc = None
    db = None
    try:
        if args.start:
            base, key, proc, _env, db = start_stack(tmp, args.api_workers)
            pid = proc.pid
        else:
            base, key, pid = args.base_url, args.api_key, args.api_pid
        small = ROOT.parent / "shared" / "data" / "visium_mouse_brain_subset.h5ad"
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as c:
            up = c.post(
                "/v1/uploads", params={"filename": "s.h5ad"}, content=small.read_bytes()
            ).json()
            job_ids = [
                c.post("/v1/jobs", json={"upload_id": up["id"]}).json()["id"] for _ in range(50)
            ]
        big = tmp / "big.h5ad"
        if args.uploaders:
            make_h5ad_like(big, args.upload_mb)
        pids = tree_pids(pid)
        base_rss = sum(rss_mb(p) for p in pids)
        peak = [base_rss]
        stop_flag = [False]

        def sample() -> None:
            while not stop_flag[0]:
                with contextlib.suppress(OSError):
                    peak[0] = max(peak[0], sum(rss_mb(p) for p in tree_pids(pid)))
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        stop = time.perf_counter() + args.duration
        lat: list[float] = []
        errs: list[int] = []
        up_times: list[float] = []
        up_errs: list[int] = []
        threads = [
            threading.Thread(target=uploader, args=(base, key, big, stop + 600, up_times, up_errs))
            for _ in range(args.uploaders)
        ]
        for t in threads:
            t.start()
        await asyncio.gather(
            *(
                poller(base, key, job_ids, stop, lat, errs, args.poll_interval)
                for _ in range(args.pollers)
            )
        )
        for t in threads:
            t.join()
        stop_flag[0] = True
        return {
            "pollers": args.pollers,
            "uploaders": args.uploaders,
            "upload_mb": args.upload_mb,
            "duration_s": args.duration,
            "api_workers": args.api_workers,
            "poll_interval_s": args.poll_interval,
            "get_job_requests": len(lat),
            "get_job_rps": round(len(lat) / args.duration, 1),
            "get_job_p50_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
            "get_job_p99_ms": round(percentile(lat, 0.99) * 1000, 2),
            "get_job_errors": len(errs),
            "uploads_done": len(up_times),
            "upload_errors": up_errs,
            "upload_mean_s": round(statistics.mean(up_times), 1) if up_times else None,
            "api_rss_before_mb": round(base_rss, 1),
            "api_rss_peak_mb": round(peak[0], 1),
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        if db is not None:
            import psycopg

            admin = os.environ.get("MGS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--start", action="store_true", help="start a throwaway API (and database) for the run"
    )
    ap.add_argument("--base-url")
    ap.add_argument("--api-key")
    ap.add_argument("--api-pid", type=int)
    ap.add_argument("--api-workers", type=int, default=1)
    ap.add_argument("--pollers", type=int, default=200)
    ap.add_argument("--uploaders", type=int, default=20)
    ap.add_argument("--upload-mb", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="each client's pause between polls (s); 0 = closed loop",
    )
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
