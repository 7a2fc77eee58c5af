"""Write the JSON Schema of ``analysis.json`` to ``docs/analysis.schema.json``.

The schema is generated from :class:`core.results.AnalysisRecord`;
``tests/unit/core/test_analysis_schema.py`` checks the committed file matches it.

``python scripts/analysis_schema.py`` rewrites the file; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "docs" / "analysis.schema.json"


def schema_text() -> str:
    """The schema as committed: indented JSON with a final newline."""
    sys.path.insert(0, str(ROOT))
    from core.results import json_schema

    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = ap.parse_args(argv)
    text = schema_text()
    if args.check:
        current = SCHEMA_FILE.read_text() if SCHEMA_FILE.is_file() else ""
        if current != text:
            print(f"{SCHEMA_FILE.relative_to(ROOT)} is stale: run python scripts/analysis_schema.py")
            return 1
        return 0
    SCHEMA_FILE.write_text(text)
    print(f"wrote {SCHEMA_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
