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
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


def test_api_renders_the_signed_pdf_without_the_analysis_stack(tmp_path: Path) -> None:
    """After a sign-off the API renders report.pdf again (fpdf2, Debian's DejaVu fonts):
    that must work with what the API image has, matplotlib and the analysis stack absent."""
    pytest.importorskip("fpdf")
    pypdf = pytest.importorskip("pypdf")
    from core.report.pdf import SYSTEM_DEJAVU

    if not (SYSTEM_DEJAVU / "DejaVuSans.ttf").is_file():
        pytest.skip("Debian's fonts-dejavu-core is not installed (the API image has it)")
    from core.report import ReportOptions, write_report
    from core.report.examples import example_features
    from tests.fixtures.report_outputs import write_output_dir

    d = write_output_dir(tmp_path / "out", features=example_features())
    write_report(d, ReportOptions())
    code = textwrap.dedent(f"""
        import json, sys
        from dataclasses import asdict
        from datetime import UTC, datetime
        from pathlib import Path
        from core.report.leakage import LeakageContext
        from core.report.pdf import render_pdf
        from core.report.signoff import Signoff
        d = Path({str(d)!r})
        load = lambda n: json.loads((d / n).read_text())
        hist = [Signoff(1, "Dr Ada Lovelace", "k", "final", None, "0" * 64, datetime.now(UTC))]
        from core.results import read_analysis
        from core.features import read_features
        pdf = render_pdf(load("report.json"), read_analysis(d), read_features(d), d,
                         None, asdict(LeakageContext.load(d)), hist)
        assert "matplotlib" not in sys.modules and "scipy" not in sys.modules
        Path({str(tmp_path / "signed.pdf")!r}).write_bytes(pdf)
        print("ok")
    """)
    env = {"PYTHONPATH": f"{blocker_dir(tmp_path)}:{ROOT}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]
    reader = pypdf.PdfReader(tmp_path / "signed.pdf")
    text = " ".join(" ".join(p.extract_text() or "" for p in reader.pages).split())
    assert "Report status: FINAL" in text and "Signed final by Dr Ada Lovelace" in text
