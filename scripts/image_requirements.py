"""Print the requirements one container image installs, read from ``pyproject.toml``.

The Dockerfiles call this so the images install what the project declares and
nothing else (the same pins CI installs with ``pip install -e '.[...]'``):

- ``api``: the ``service`` and ``pdf`` extras plus the few base dependencies the API process
  imports (settings, and h5py for sniffing uploads); no scientific stack, no torch. The
  ``pdf`` extra (fpdf2, which brings Pillow) renders the report PDF again after a sign-off.
- ``analysis``: the base dependencies plus the ``service`` extra.
- ``report``: the base dependencies plus the ``service``, ``model`` and ``pdf`` extras.

``python scripts/image_requirements.py api > requirements.txt``
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# base dependencies the API process needs (everything else in the base list is the analysis)
API_BASE = {"pydantic", "pydantic-settings", "h5py"}
TARGETS = ("api", "analysis", "report")


def _name(req: str) -> str:
    m = re.match(r"[A-Za-z0-9_.\-]+", req)
    return (m.group(0) if m else req).lower().replace("_", "-")


def requirements(target: str, pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The requirement strings of one image target."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    project = tomllib.loads(pyproject.read_text())["project"]
    base: list[str] = project["dependencies"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    if target == "api":
        missing = API_BASE - {_name(r) for r in base}
        if missing:
            raise ValueError(f"pyproject.toml no longer lists {sorted(missing)}")
        return [r for r in base if _name(r) in API_BASE] + extras["service"] + extras["pdf"]
    out = base + extras["service"]
    if target == "report":
        out += extras["model"] + extras["pdf"]
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TARGETS:
        print(f"usage: image_requirements.py {{{'|'.join(TARGETS)}}}", file=sys.stderr)
        return 2
    print("\n".join(requirements(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
