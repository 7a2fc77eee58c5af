"""The API image installs only `scripts/image_requirements.py api`: the API process, the
relay, the migrations and the healthchecks must run without the scientific stack or torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.deploy.api_image import blocker_dir

pytest.importorskip("fastapi", reason="the service extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
def test_api_runs_without_the_analysis_stack(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        try:
            import scipy  # noqa: F401
            raise SystemExit("the blocker is not active")
        except ImportError:
            pass
        import api.main, cli.service, scripts.healthcheck, worker.relay
        import core.jobs.service, core.jobs.uploads, core.jobs.outbox, core.storage, core.db.migrate
        app = api.main.create_app()
        spec = app.openapi()
        assert "/" not in spec["paths"] and not any(p.startswith("/console") for p in spec["paths"])
        from fastapi.testclient import TestClient
        client = TestClient(app)  # no lifespan: the console needs no database
        page = client.get("/")
        assert page.status_code == 200 and "lab console" in page.text, page.status_code
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for name in ("app.js", "style.css"):
            r = client.get(f"/console/{name}")
            assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff", name
        print("ok")
    """)
    env = {"PYTHONPATH": f"{blocker_dir(tmp_path)}:{ROOT}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]
