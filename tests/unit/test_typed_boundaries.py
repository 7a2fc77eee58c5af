"""No ``typing.Any`` across a module boundary.

A *module boundary* is a name another module can use: a public (no leading ``_``) function
or annotated variable at module level; a public or dunder method of a public top-level class
(or of a private base class a public one inherits from); and the fields of such a class
(class-body annotations of a dataclass, ``TypedDict``, pydantic model, ``NamedTuple``, and
``self.x: T`` declared in its methods): a function that returns such a class hands its fields
across too. Private helpers may use ``Any`` inside a module; what one module hands another has
a real type. Arbitrary JSON is ``core.jsonable.JSONValue`` / ``JSONObject`` (a recursive
alias), never ``Any``; an unknown third-party object is ``object``.

Checked on the source with ``ast`` in ``core/``, ``api/``, ``worker/`` and ``cli/``:
``Any`` and ``typing.Any`` written in a parameter, return or field annotation (also inside a
string annotation), and a type alias that contains ``Any`` (``X = dict[str, Any]``, defined
in the same module or imported from one of these packages) used there. ``ALLOWED`` lists the
few seams whose types are a framework's, each with its reason; an entry that no longer needs
``Any`` must be removed (the test fails on a stale entry).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "api", "worker", "cli")

# "path::qualified name" -> why the signature keeps Any
ALLOWED: dict[str, str] = {
    "api/errors.py::problem_responses": (
        "FastAPI's own type: the value is passed as a route's ``responses=``, which FastAPI "
        "annotates dict[int | str, dict[str, Any]] (OpenAPI response objects)"
    ),
    "core/report/backends/hf.py::load_model": (
        "transformers' processor (a tokenizer or a multimodal processor, by model) and model: "
        "transformers and torch are an optional extra, absent where mypy runs, so their "
        "classes cannot be named"
    ),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_any(node: ast.AST) -> bool:
    if isinstance(node, ast.Name) and node.id == "Any":
        return True
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "Any"
        and isinstance(node.value, ast.Name)
        and node.value.id in {"typing", "t", "typing_extensions"}
    )


def _names(annotation: ast.AST) -> Iterator[ast.AST]:
    """Every node of an annotation, string annotations parsed."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                yield from _names(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                continue
        else:
            yield node


class _Index:
    """Type aliases with ``Any`` in them, per module, following imports between our modules."""

    def __init__(self, trees: dict[str, ast.Module]) -> None:
        self.trees = trees
        self.local: dict[str, dict[str, ast.AST]] = {}
        self.imported: dict[str, dict[str, tuple[str, str]]] = {}
        for mod, tree in trees.items():
            local: dict[str, ast.AST] = {}
            imported: dict[str, tuple[str, str]] = {}
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        local[target.id] = node.value
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    if node.value is not None and "TypeAlias" in ast.unparse(node.annotation):
                        local[node.target.id] = node.value
                elif type(node).__name__ == "TypeAlias":  # ``type X = ...`` (Python 3.12+)
                    local[node.name.id] = node.value  # type: ignore[attr-defined]
                elif (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.level == 0
                    and node.module.split(".")[0] in PACKAGES
                ):
                    for alias in node.names:
                        imported[alias.asname or alias.name] = (node.module, alias.name)
            self.local[mod] = local
            self.imported[mod] = imported
        self._memo: dict[tuple[str, str], bool] = {}

    def alias_has_any(
        self, mod: str, name: str, seen: frozenset[tuple[str, str]] = frozenset()
    ) -> bool:
        key = (mod, name)
        if key in self._memo:
            return self._memo[key]
        if key in seen:
            return False
        seen = seen | {key}
        result = False
        if name in self.local.get(mod, {}):
            result = self.has_any(mod, self.local[mod][name], seen)
        elif name in self.imported.get(mod, {}):
            src_mod, src_name = self.imported[mod][name]
            result = self.alias_has_any(src_mod, src_name, seen)
        self._memo[key] = result
        return result

    def has_any(
        self, mod: str, annotation: ast.AST, seen: frozenset[tuple[str, str]] = frozenset()
    ) -> bool:
        for node in _names(annotation):
            if _is_any(node):
                return True
            if (
                isinstance(node, ast.Name)
                and node.id != "Any"
                and self.alias_has_any(mod, node.id, seen)
            ):
                return True
        return False


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__"))


def _function_annotations(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    a = fn.args
    for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
        if arg is not None and arg.annotation is not None:
            yield arg.annotation
    if fn.returns is not None:
        yield fn.returns


def _offenders(trees: dict[str, ast.Module], paths: dict[str, str]) -> dict[str, str]:
    """``"path::qualname"`` -> the annotation that holds ``Any``, for every public seam."""
    index = _Index(trees)
    found: dict[str, str] = {}

    def check(mod: str, qualname: str, annotation: ast.AST) -> None:
        if index.has_any(mod, annotation):
            found.setdefault(f"{paths[mod]}::{qualname}", ast.unparse(annotation))

    for mod, tree in trees.items():
        # a private base class's methods and fields reach other modules through its public
        # subclasses (``_Options.parse`` is ``AnalysisOptions.parse``)
        inherited = {
            base.id
            for node in tree.body
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
            for base in node.bases
            if isinstance(base, ast.Name)
        }
        for node in tree.body:
            if isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef)
            ) and not node.name.startswith("_"):
                for ann in _function_annotations(node):
                    check(mod, node.name, ann)
            elif (  # a public module-level variable (aliases are checked where they are used)
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and not node.target.id.startswith("_")
                and "TypeAlias" not in ast.unparse(node.annotation)
            ):
                check(mod, node.target.id, node.annotation)
            elif isinstance(node, ast.ClassDef) and (
                not node.name.startswith("_") or node.name in inherited
            ):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        if _public(item.name):
                            for ann in _function_annotations(item):
                                check(mod, f"{node.name}.{item.name}", ann)
                        # instance attributes declared in any method: ``self.client: T = ...``
                        for sub in ast.walk(item):
                            if (
                                isinstance(sub, ast.AnnAssign)
                                and isinstance(sub.target, ast.Attribute)
                                and isinstance(sub.target.value, ast.Name)
                                and sub.target.value.id == "self"
                                and not sub.target.attr.startswith("_")
                            ):
                                check(mod, f"{node.name}.{sub.target.attr}", sub.annotation)
                    elif (
                        isinstance(item, ast.AnnAssign)
                        and isinstance(item.target, ast.Name)
                        and not item.target.id.startswith("_")
                    ):
                        check(mod, f"{node.name}.{item.target.id}", item.annotation)
    return found


def _parse_packages() -> tuple[dict[str, ast.Module], dict[str, str]]:
    trees: dict[str, ast.Module] = {}
    paths: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            mod = _module_name(path)
            trees[mod] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            paths[mod] = str(path.relative_to(ROOT))
    return trees, paths


def test_no_any_across_module_boundaries() -> None:
    trees, paths = _parse_packages()
    found = _offenders(trees, paths)
    unexplained = {k: v for k, v in found.items() if k not in ALLOWED}
    assert unexplained == {}, "\n".join(f"{k}: {v}" for k, v in sorted(unexplained.items()))


def test_the_allowlist_has_no_stale_entries() -> None:
    trees, paths = _parse_packages()
    found = _offenders(trees, paths)
    assert sorted(set(ALLOWED) - set(found)) == []
    assert all(reason.strip() for reason in ALLOWED.values())


def _check_source(files: dict[str, str]) -> dict[str, str]:
    trees = {mod: ast.parse(src) for mod, src in files.items()}
    return _offenders(trees, {mod: mod for mod in files})


def test_the_checker_sees_any_in_every_form() -> None:
    found = _check_source(
        {
            "core.a": (
                "import typing\nfrom typing import Any\n"
                "Blob = dict[str, Any]\n"
                "REGISTRY: dict[str, Any] = {}\n"
                "_PRIVATE: dict[str, Any] = {}\n"
                "def plain(x: Any) -> None: ...\n"
                "def ret() -> 'list[Any]': ...\n"
                "def dotted(**kw: typing.Any) -> None: ...\n"
                "def via_alias(b: Blob) -> None: ...\n"
                "def _private(x: Any) -> Any: ...\n"
                "class Shape:\n    field: Blob\n    _hidden: Any\n"
                "    def method(self, *a: Any) -> None: ...\n"
                "    def __exit__(self, *exc: Any) -> None: ...\n"
                "    def _helper(self) -> Any:\n"
                "        self.handle: Any = None\n"
                "        self._own: Any = None\n"
                "class _Private:\n    def m(self) -> Any: ...\n"
                "class _Base:\n    def parse(self, **kw: Any) -> None: ...\n"
                "class Public(_Base): ...\n"
            ),
            "core.b": "from core.a import Blob\nasync def imported(b: Blob) -> None: ...\n",
            "core.c": "JSON = dict[str, 'JSON'] | list['JSON'] | str | None\ndef ok(j: JSON) -> object: ...\n",
        }
    )
    assert sorted(found) == sorted(
        [
            "core.a::REGISTRY",
            "core.a::Shape.__exit__",
            "core.a::_Base.parse",
            "core.a::Shape.field",
            "core.a::Shape.handle",
            "core.a::Shape.method",
            "core.a::dotted",
            "core.a::plain",
            "core.a::ret",
            "core.a::via_alias",
            "core.b::imported",
        ]
    )
