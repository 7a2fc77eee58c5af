"""Job status under load, measured with wrk (a compiled load generator; ``apt-get install wrk``).

    python bench/status_wrk.py                      # this tree's API
    python bench/status_wrk.py --code-root /work/main --no-longpoll   # another checkout, to compare

Starts a throwaway database and ``medgemma-spatial serve`` (one worker), makes one queued
job (no worker runs, so it stays queued), then:

1. ``paced``: plain ``GET /v1/jobs/{id}`` offered at ``--rate`` requests/s (each wrk
   connection waits connections/rate s between requests) for ``--duration`` s: p50/p99.
   wrk has no rate option and wrk2 is not packaged here: this pacing is closed-loop (a
   connection sends its next request only after the answer plus the delay), so when the
   API falls behind the achieved rate drops below the offered one and the latencies do not
   include the time a request would have waited to be sent (no coordinated-omission
   correction). Read ``req_per_s`` (achieved) beside ``offered_per_s``.
2. ``open``: the same GET as fast as ``--connections`` connections go: throughput and the
   API's CPU time per request (user+system of the API process / requests served).
3. ``longpoll``: ``--pollers`` connections each holding ``GET ?wait=N`` with the current
   ETag (304 after N s, then again): the API's peak RSS while they wait, and its CPU.

The API runs with ``--workers`` uvicorn processes (2, as Dockerfile.api's CMD). The result
records the machine's load average before and after (``/proc/loadavg``) and its CPU count:
figures from a shared machine are only comparable within one run.

Prints one JSON object. Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import load_api

LUA_REPORT = """
done = function(summary, latency, requests)
  local codes = {}
  io.write(string.format(
    "WRKJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_ms\\": %.3f, \\"p90_ms\\": %.3f, "
    .. "\\"p99_ms\\": %.3f, \\"max_ms\\": %.3f, \\"errors\\": %d, \\"non2xx3xx\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def lua(headers: dict[str, str], delay_ms: float | None) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if delay_ms:
        lines.append(f"delay = function() return {delay_ms:.3f} end")
    return "\n".join(lines) + "\n" + LUA_REPORT


def cpu_s(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def held_connections(port: int) -> int:
    """Established TCP connections to the API's port (``ss``), i.e. requests it holds open."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    return len(out.splitlines())


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_wrk(
    url: str,
    script: str,
    connections: int,
    duration: float,
    threads: int,
    timeout_s: int,
    api_pids: list[int],
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    peak = [0.0]
    peak_pss = [0.0]
    held = [0]
    port = int(url.split(":")[2].split("/")[0])
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(load_api.rss_mb(p) for p in api_pids))
            peak_pss[0] = max(peak_pss[0], sum(load_api.pss_mb(p) for p in api_pids))
            held[0] = max(held[0], held_connections(port))
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    cpu0 = cpu_s(api_pids)
    t.start()
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{duration:.0f}s",
            "--timeout",
            f"{timeout_s}s",
            "-s",
            fh.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stop.set()
    t.join()
    cpu = cpu_s(api_pids) - cpu0
    os.unlink(fh.name)
    m = re.search(r"WRKJSON (\{.*\})", out)
    assert m, out
    res: dict[str, Any] = json.loads(m.group(1))
    res["req_per_s"] = round(res["requests"] / (res["duration_us"] / 1e6), 1)
    res["api_cpu_s"] = round(cpu, 2)
    res["api_cpu_ms_per_request"] = round(1000 * cpu / max(res["requests"], 1), 3)
    res["api_rss_peak_mb"] = round(peak[0], 1)  # sum over the API's processes
    res["api_pss_peak_mb"] = round(peak_pss[0], 1)  # the same, shared pages counted once
    res["connections_held_peak"] = held[0]
    res["loadavg_after"] = loadavg()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--code-root", type=Path, default=load_api.ROOT, help="the checkout whose API is measured"
    )
    ap.add_argument("--rate", type=float, default=500, help="offered GETs per second (paced)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--pollers", type=int, default=1000)
    ap.add_argument("--wait", type=int, default=20, help="long poll N (s)")
    ap.add_argument("--no-longpoll", action="store_true", help="a checkout without ?wait")
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn worker processes of the API (Dockerfile.api runs 2)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the API during the open run; collapsed stacks to this file "
        "(pip install py-spy)",
    )
    ap.add_argument(
        "--only",
        choices=("paced", "open", "longpoll"),
        action="append",
        help="run only these phases (repeatable)",
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    load_api.ROOT = args.code_root.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="mgs-wrk-"))
    base, key, proc, _env, db = load_api.start_stack(tmp, args.workers)
    try:
        auth = {"Authorization": f"Bearer {key}"}
        h5 = tmp / "s.h5ad"
        load_api.make_h5ad_like(h5, 1)
        with httpx.Client(base_url=base, headers=auth, timeout=60) as c:
            up = c.post(
                "/v1/uploads",
                params={"filename": "s.h5ad"},
                content=h5.read_bytes(),
                headers={"content-type": "application/octet-stream"},
            ).json()
            job = c.post("/v1/jobs", json={"upload_id": up["id"]}).json()
            etag = c.get(f"/v1/jobs/{job['id']}").headers.get("etag", "")
        url = f"{base}/v1/jobs/{job['id']}"
        time.sleep(2)
        pids = load_api.tree_pids(proc.pid)
        rss0 = round(sum(load_api.rss_mb(p) for p in pids), 1)
        result: dict[str, Any] = {
            "code_root": str(args.code_root),
            "api_workers": args.workers,
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg(),
            "api_rss_idle_mb": rss0,
            "api_pss_idle_mb": round(sum(load_api.pss_mb(p) for p in pids), 1),
            "api_processes": len(pids),
        }
        delay_ms = 1000 * args.connections / args.rate
        phases = set(args.only or ("paced", "open", "longpoll"))
        if "paced" in phases:
            result["paced"] = run_wrk(
                url, lua(auth, delay_ms), args.connections, args.duration, 2, 5, pids
            )
            result["paced"]["offered_per_s"] = args.rate
        if "open" in phases:
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--nonblocking",
                        "-o",
                        str(args.profile),
                        "--subprocesses",
                        "-p",
                        str(proc.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1)
            result["open"] = run_wrk(url, lua(auth, None), 8, args.duration, 2, 5, pids)
            if spy is not None:
                spy.send_signal(2)
                spy.wait(30)
        if not args.no_longpoll and "longpoll" in phases:
            hdrs = {**auth, "If-None-Match": etag.replace('"', '\\"')}
            result["longpoll"] = run_wrk(
                f"{url}?wait={args.wait}",
                lua(hdrs, None),
                args.pollers,
                max(args.duration, args.wait * 2),
                2,
                args.wait + 60,
                pids,
            )
            result["longpoll"]["pollers"] = args.pollers
        print(json.dumps(result, indent=2))
    finally:
        tree = load_api.tree_pids(proc.pid)
        proc.terminate()
        try:
            proc.wait(30)  # 1,000 held connections can take a while to close
        except subprocess.TimeoutExpired:
            for pid in reversed(tree):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(10)
        import psycopg

        admin = os.environ.get("MGS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
