"""``python -m api.serve``: the process that supervises uvicorn's workers imports no app code."""

from __future__ import annotations

import subprocess
import sys

from api.serve import parse_args


def test_supervisor_imports_uvicorn_only() -> None:
    # the workers import the app; the supervisor (and with it every spawned worker's __main__)
    # must not carry FastAPI, SQLAlchemy, psycopg or Redis: that was ~40 MB per API deployment
    code = (
        "import sys, api.serve; "
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'psycopg', 'redis', 'pydantic', 'core') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_arguments_as_serve_passes_them() -> None:
    args = parse_args(
        ["--host", "0.0.0.0", "--port", "8001", "--workers", "2", "--keep-alive", "3"]
    )
    assert (args.host, args.port, args.workers, args.keep_alive) == ("0.0.0.0", 8001, 2, 3)
