"""Visium HD cells through the service: a .tar.gz of a Space Ranger 4 outs/ folder (segmented_outputs/ +
binned_outputs/ + barcode_mappings.parquet), and one of segmented_outputs/ alone, upload, validate and run
like any other sample (API + relay + CPU worker + report worker, template backend)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import start_relay, start_worker, wait_state
from tests.service.helpers import client, upload


@pytest.fixture(scope="module")
def workers(service_env: dict[str, str], tmp_path_factory: Any):  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("hdcells-logs")
    env = {**service_env, "MGS_REPORT_BACKEND": "template"}
    procs = [
        start_relay(env, logs / "relay.log"),
        start_worker(env, logs / "analysis.log", "analysis"),
        start_worker(env, logs / "report.log", "report"),
    ]
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def sr4_outs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.hd_cells import make_hd_cells

    return make_hd_cells(tmp_path_factory.mktemp("hdsr4") / "outs", seed=7, segmented=True).out


def _targz(folder: Path, only: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        if only:
            t.add(folder / only, arcname=only)
        else:
            t.add(folder, arcname="outs")
    return buf.getvalue()


def test_segmented_outputs_alone_is_accepted_at_upload(
    api: str, tenant_a: dict[str, str], sr4_outs: Path
) -> None:
    with client(api, tenant_a["auth"]) as c:
        r = upload(c, _targz(sr4_outs, "segmented_outputs"), "cells.tar.gz")
        assert r.status_code == 201, r.text
        assert r.json()["format"] == "tar.gz"


def test_hd_cells_end_to_end(
    api: str, tenant_a: dict[str, str], workers: Any, sr4_outs: Path
) -> None:
    with client(api, tenant_a["auth"]) as c:
        up = upload(c, _targz(sr4_outs), "hd_sr4.tar.gz").json()
        job = c.post(
            "/v1/jobs",
            json={
                "upload_id": up["id"],
                "external_sample_id": "E2E-HD-CELLS",
                "options": {"backend": "template", "seed": 0},
            },
        ).json()
        done = wait_state(c, job["id"], {"succeeded", "failed", "canceled"}, timeout=600)
        assert done["state"] == "succeeded", (done, [p.tail() for p in workers])
        assert done["provenance"]["validation"]["unit"] == "cell"
        names = {a["name"] for a in c.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
        assert {"cells.geojson", "spots.csv", "analysis.json"} <= names, names
        analysis = c.get(f"/v1/jobs/{job['id']}/artifacts/analysis.json").json()
        assert (
            analysis["unit"] == "cell" and analysis["cells"]["method"] == "spaceranger_segmentation"
        )
        gj = json.loads(c.get(f"/v1/jobs/{job['id']}/artifacts/cells.geojson").text)
        assert gj["features"] and gj["features"][0]["properties"]["objectType"] == "cell"
        spots = c.get(f"/v1/jobs/{job['id']}/artifacts/spots.csv").text
        assert "in_nucleus_frac" in spots.splitlines()[0]
