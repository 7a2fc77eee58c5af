"""The public core API is documented as scanpy and squidpy document theirs (numpydoc): every
public function of these modules says its Parameters and, when it returns something, Returns."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "core/analysis/pipeline.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core/io/readers").glob("*.py")),
]
ENTRY_POINTS = {
    "core/runner.py": {"run_analysis_stage", "check_out_dir"},
    "core/io/preflight.py": {"preflight_h5ad", "preflight_10x_h5"},
}


def _missing(path: str, only: set[str] | None = None) -> list[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        if only is not None and node.name not in only:
            continue
        doc = ast.get_docstring(node) or ""
        params = [a.arg for a in node.args.args + node.args.kwonlyargs]
        if params and "Parameters\n----------" not in doc:
            out.append(f"{path}:{node.name}: no Parameters section")
        returns = node.returns is not None and ast.unparse(node.returns) != "None"
        if returns and "Returns\n-------" not in doc:
            out.append(f"{path}:{node.name}: no Returns section")
    return out


@pytest.mark.parametrize("path", MODULES)
def test_public_functions_have_numpydoc_sections(path: str) -> None:
    assert _missing(path) == []


@pytest.mark.parametrize("path", sorted(ENTRY_POINTS))
def test_entry_points_have_numpydoc_sections(path: str) -> None:
    assert _missing(path, ENTRY_POINTS[path]) == []
