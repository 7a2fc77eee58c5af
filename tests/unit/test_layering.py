"""The dependency direction the layout promises: ``cli`` -> ``api``/``worker`` -> ``core``.

``core`` runs in a notebook, the CLI and a worker alike: it must not import the HTTP layer,
the queue layer or the command line; ``core.analysis`` and ``core.report`` (the science and
the report) must not import the service's infrastructure either. Checked on the source with
``ast`` (every ``import`` and ``from ... import``, also those inside functions), so a lazy
import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _offenders(package: str, forbidden: set[str]) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            if module.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


def test_core_imports_neither_api_nor_worker_nor_cli() -> None:
    assert _offenders("core", {"api", "worker", "cli", "tests"}) == []


@pytest.mark.parametrize("package", ["core/analysis", "core/report"])
def test_science_imports_no_service_infrastructure(package: str) -> None:
    assert _offenders(package, {"fastapi", "celery", "sqlalchemy", "boto3", "botocore"}) == []


def test_api_and_worker_do_not_import_the_cli() -> None:
    assert _offenders("api", {"cli", "tests"}) == []
    assert _offenders("worker", {"cli", "tests"}) == []


def test_the_checker_sees_a_lazy_import(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from api.cli import register\n    import worker.tasks\n")
    assert [m for _, m in _imports(p)] == ["api.cli", "worker.tasks"]
