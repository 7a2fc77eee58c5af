"""The HTTP half of ``make stack-smoke`` (scripts/containers/smoke.sh): standard library only.

Uploads a Space Ranger folder (as ``outs/`` in a .tar.gz), submits a job, waits for it to
succeed, downloads the report (JSON and PDF) and one analysis artifact, and checks them.
Exit 0 on success; otherwise one line on stderr says what failed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class Client:
    def __init__(self, api: str, key: str) -> None:
        self.api, self.key = api.rstrip("/"), key

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        ctype: str = "application/json",
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.api + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": ctype},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(
        self,
        method: str,
        path: str,
        payload: Any = None,
        raw: bytes | None = None,
        ctype: str = "application/json",
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        body = (
            raw
            if raw is not None
            else (json.dumps(payload).encode() if payload is not None else None)
        )
        status, data = self.call(method, path, body, ctype)
        if status not in ok:
            raise SystemExit(f"{method} {path} answered {status}: {data[:500]!r}")
        return json.loads(data)


def targz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(folder, arcname="outs")
    return buf.getvalue()


def find_key(doc: Any, key: str) -> list[Any]:
    if isinstance(doc, dict):
        return ([doc[key]] if key in doc else []) + [
            v for x in doc.values() for v in find_key(x, key)
        ]
    if isinstance(doc, list):
        return [v for x in doc for v in find_key(x, key)]
    return []


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--sample", type=Path, required=True, help="a Space Ranger outs/ folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--label", default="job")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--expect-backend", help="the report's narrative backend must be this")
    args = ap.parse_args(argv)
    c = Client(args.api, args.key)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"  [{args.label} +{time.monotonic() - t0:5.1f}s] {msg}", flush=True)

    data = targz(args.sample)
    up = c.json(
        "POST", "/v1/uploads?filename=visium.tar.gz", raw=data, ctype="application/octet-stream"
    )
    say(f"uploaded {args.sample.name} ({len(data)} bytes): upload {up['id']}")
    job = c.json("POST", "/v1/jobs", {"upload_id": up["id"]})
    say(f"job {job['id']} {job['state']}")
    seen = job["state"]
    deadline = time.monotonic() + args.timeout
    while job["state"] not in ("succeeded", "failed", "canceled"):
        if time.monotonic() > deadline:
            raise SystemExit(
                f"job {job['id']} still {job['state']} (stage {job.get('stage')}) "
                f"after {args.timeout:.0f} s"
            )
        time.sleep(1)
        job = c.json("GET", f"/v1/jobs/{job['id']}")
        now = f"{job['state']}/{job.get('stage')}"
        if now != seen:
            say(now)
            seen = now
    if job["state"] != "succeeded":
        raise SystemExit(f"job {job['id']} {job['state']}: {json.dumps(job.get('error'))}")

    report = c.json("GET", f"/v1/jobs/{job['id']}/report")
    (args.out / f"{args.label}-report.json").write_text(json.dumps(report, indent=2))
    backends = [b for b in find_key(report, "backend") if b]
    say(f"report.json: {len(json.dumps(report))} bytes, backend {sorted(set(map(str, backends)))}")
    if args.expect_backend and args.expect_backend not in backends:
        raise SystemExit(f"the report was written by {backends}, not {args.expect_backend}")
    status, pdf = c.call("GET", f"/v1/jobs/{job['id']}/report?format=pdf")
    if status != 200 or not pdf.startswith(b"%PDF"):
        raise SystemExit(f"report.pdf answered {status}: {pdf[:200]!r}")
    (args.out / f"{args.label}-report.pdf").write_bytes(pdf)
    say(f"report.pdf: {len(pdf)} bytes")

    items = c.json("GET", f"/v1/jobs/{job['id']}/artifacts")["items"]
    if not items:
        raise SystemExit("the job has no artifacts")
    art = next((a for a in items if a["name"].endswith((".csv", ".tsv", ".json"))), items[0])
    status, blob = c.call("GET", f"/v1/jobs/{job['id']}/artifacts/{art['name']}", timeout=120)
    if status in (301, 302, 303, 307):
        raise SystemExit(f"artifact {art['name']} redirected ({status})")
    if status != 200 or not blob or (art.get("size") and len(blob) != art["size"]):
        raise SystemExit(
            f"artifact {art['name']} answered {status}, {len(blob)} bytes "
            f"(listed {art.get('size')})"
        )
    (args.out / f"{args.label}-{Path(art['name']).name}").write_bytes(blob)
    say(f"{len(items)} artifacts; downloaded {art['name']} ({len(blob)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
