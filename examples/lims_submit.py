"""What a lab's LIMS does: upload a sample, submit a job, long-poll its status, download the report.

Uses the generated SDK (clients/python). Example:

    MGS_API_KEY=mgs_... python examples/lims_submit.py --base-url http://127.0.0.1:8000 \
        --sample ../shared/data/visium_10x_v1_subset --external-sample-id LIMS-0001 --out results/

A folder (Space Ranger ``outs/``) is sent as a .tar.gz made on the fly; an .h5ad as is.
Status comes by long poll: ``GET /v1/jobs/{id}?wait=30`` with the last ``ETag`` in
``If-None-Match`` returns as soon as the job's state or stage changes (304 when 30 s
pass without a change), so the client makes a handful of requests per job, not hundreds.
Exit status: 0 succeeded, 1 the job failed or was canceled, 2 a request was refused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))

from medgemma_spatial_client import AuthenticatedClient
from medgemma_spatial_client.api.jobs import create_job, get_job, list_artifacts
from medgemma_spatial_client.api.uploads import create_upload
from medgemma_spatial_client.models import (
    JobCreate,
    JobOptions,
    JobOut,
    Problem,
    ReportBackend,
    UploadOut,
)
from medgemma_spatial_client.types import UNSET, File

TERMINAL = {"succeeded", "failed", "canceled"}


def refuse(what: str, p: object) -> int:
    if isinstance(p, Problem):
        print(f"{what} refused: [{p.code}] {p.detail}", file=sys.stderr)
    else:
        print(f"{what} failed: {p!r}", file=sys.stderr)
    return 2


def pack(sample: Path, tmp: Path) -> tuple[Path, str]:
    if sample.is_dir():
        out = tmp / f"{sample.name}.tar.gz"
        with tarfile.open(out, "w:gz") as t:
            t.add(sample, arcname="outs")
        return out, out.name
    return sample, sample.name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=os.environ.get("MGS_BASE_URL", "http://127.0.0.1:8000"))
    ap.add_argument("--api-key", default=os.environ.get("MGS_API_KEY"))
    ap.add_argument("--sample", required=True, type=Path)
    ap.add_argument("--external-sample-id", default=None)
    ap.add_argument("--callback-url", default=None)
    ap.add_argument("--backend", default="template", choices=[b.value for b in ReportBackend])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args(argv)
    if not args.api_key:
        ap.error("an API key is needed (--api-key or MGS_API_KEY)")

    client = AuthenticatedClient(base_url=args.base_url, token=args.api_key, timeout=None)
    with tempfile.TemporaryDirectory() as tmp:
        path, name = pack(args.sample, Path(tmp))
        with open(path, "rb") as fh:  # streamed from disk
            up = create_upload.sync(
                client=client, body=File(payload=fh, file_name=name), filename=name
            )
    if not isinstance(up, UploadOut):
        return refuse("upload", up)
    print(f"uploaded {name}: {up.size:,} bytes, sha256 {up.sha256}")

    body = JobCreate(
        upload_id=up.id,
        external_sample_id=args.external_sample_id,
        options=JobOptions(backend=ReportBackend(args.backend)),
        callback_url=args.callback_url,
    )
    # the same key makes a retried submit (after a timeout, say) return the same job
    job = create_job.sync(client=client, body=body, idempotency_key=str(uuid.uuid4()))
    if not isinstance(job, JobOut):
        return refuse("submit", job)
    print(f"job {job.id} queued")

    deadline, last, etag, backoff = time.monotonic() + args.timeout, "", None, 1.0
    while True:
        resp = get_job.sync_detailed(
            job.id, client=client, wait=30, if_none_match=etag if etag else UNSET
        )
        if resp.status_code == 304:  # nothing changed in 30 s: ask again
            pass
        elif isinstance(resp.parsed, JobOut):
            job, etag, backoff = resp.parsed, resp.headers.get("etag"), 1.0
        elif resp.status_code >= 500 or resp.status_code == 429:  # back off, then again
            time.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, 60.0)
        else:
            return refuse("poll", resp.parsed)
        line = f"{job.state} {job.stage} {job.progress:.0%}"
        if line != last:
            print(line)
            last = line
        if job.state in TERMINAL:
            break
        if time.monotonic() > deadline:
            print("timed out waiting for the job", file=sys.stderr)
            return 1

    if job.state != "succeeded":
        err = job.error
        print(
            f"job {job.state}: [{getattr(err, 'code', '')}] {getattr(err, 'detail', '')}",
            file=sys.stderr,
        )
        return 1

    report = getattr(job, "report", None)  # a report without narrative still counts: say why
    if report is not None and str(getattr(report.narrative, "value", "")) == "withheld":
        reason = report.reason
        print(f"report written without narrative: [{getattr(reason, 'code', '')}] "
              f"{getattr(reason, 'detail', '')}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    http = client.get_httpx_client()
    for fmt, fn in (("json", "report.json"), ("markdown", "report.md"), ("html", "report.html")):
        with http.stream("GET", f"/v1/jobs/{job.id}/report", params={"format": fmt}) as r:
            r.raise_for_status()
            with open(args.out / fn, "wb") as fh:
                for chunk in r.iter_bytes():
                    fh.write(chunk)
    arts = list_artifacts.sync(job.id, client=client)
    names = (
        [a.name for a in arts.items] if arts is not None and not isinstance(arts, Problem) else []
    )
    (args.out / "artifacts.json").write_text(json.dumps(names, indent=2))
    print(f"report in {args.out}/report.md; {len(names)} artifacts on the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
