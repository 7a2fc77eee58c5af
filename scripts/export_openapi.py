"""Write the app's OpenAPI spec to openapi.json (what the SDK is generated from)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def spec_text() -> str:
    sys.path.insert(0, str(ROOT))
    from api.main import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    out = ROOT / "openapi.json"
    out.write_text(spec_text())
    print(f"wrote {out}")
