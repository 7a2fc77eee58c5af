"""Write the JSON Schemas of ``analysis.json`` and ``features.json`` to ``docs/``.

``docs/analysis.schema.json`` is generated from :class:`core.results.AnalysisRecord`,
``docs/features.schema.json`` from :class:`core.features.FeaturesRecord`;
``tests/unit/core/test_analysis_schema.py`` checks the committed files match them.

``python scripts/analysis_schema.py`` rewrites the files; ``--check`` exits 1 when one is stale.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# document -> (committed schema file, module whose json_schema() makes it)
SCHEMAS = {
    "analysis": (ROOT / "docs" / "analysis.schema.json", "core.results"),
    "features": (ROOT / "docs" / "features.schema.json", "core.features"),
}
SCHEMA_FILE = SCHEMAS["analysis"][0]


def schema_text(document: str = "analysis") -> str:
    """The schema as committed: indented JSON with a final newline."""
    sys.path.insert(0, str(ROOT))
    module = importlib.import_module(SCHEMAS[document][1])
    return json.dumps(module.json_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    args = ap.parse_args(argv)
    stale = 0
    for document, (path, _) in SCHEMAS.items():
        text = schema_text(document)
        if args.check:
            current = path.read_text() if path.is_file() else ""
            if current != text:
                print(f"{path.relative_to(ROOT)} is stale: run python scripts/analysis_schema.py")
                stale = 1
            continue
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return stale


if __name__ == "__main__":
    raise SystemExit(main())
