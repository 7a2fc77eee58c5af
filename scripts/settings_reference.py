"""Generate the settings reference from ``core.config.Settings``.

Two outputs, both checked by ``tests/deploy/test_settings_reference.py``:

- the table between the ``settings-reference`` markers in ``docs/operations.md``;
- the ``MGS_*`` block between the markers in ``.env.example``.

``python scripts/settings_reference.py`` rewrites both in place.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "docs" / "operations.md"
ENV_EXAMPLE = ROOT / ".env.example"
BEGIN, END = "settings-reference:begin", "settings-reference:end"
# set by docker-compose.yml from the compose-level variables; listed commented out in .env.example
WIRED_BY_COMPOSE = {"database_url", "broker_url", "storage_url", "s3_endpoint_url"}
# never for production; left out of .env.example
TEST_ONLY: set[str] = set()


def _settings_fields() -> list[tuple[str, Any, str, str]]:
    """(name, default, type, description) of every Settings field, in declaration order."""
    sys.path.insert(0, str(ROOT))
    from core.config import Settings

    out = []
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        args = [a for a in get_args(ann) if a is not type(None)]
        if args:  # X | None
            type_name = " or ".join(getattr(a, "__name__", str(a)) for a in args) + " (optional)"
        else:
            type_name = getattr(ann, "__name__", str(ann))
        out.append((name, field.default, type_name, field.description or ""))
    return out


def _default_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def markdown_table() -> str:
    """The settings reference as a Markdown table."""
    rows = [
        "| variable | type | default | what |",
        "| --- | --- | --- | --- |",
    ]
    for name, default, type_name, desc in _settings_fields():
        d = _default_text(default)
        rows.append(
            f"| `MGS_{name.upper()}` | {type_name} | {f'`{d}`' if d else '(unset)'} | "
            f"{desc.replace('|', '/')} |"
        )
    return "\n".join(rows)


def env_block() -> str:
    """The ``MGS_*`` lines of ``.env.example`` (defaults commented out)."""
    lines = []
    for name, default, _type, desc in _settings_fields():
        if name in TEST_ONLY:
            continue
        var = f"MGS_{name.upper()}"
        lines.append(f"# {desc}")
        if name in WIRED_BY_COMPOSE:
            lines.append("# (set by docker-compose.yml from the variables above)")
        lines.append(f"# {var}={_default_text(default)}")
    return "\n".join(lines)


def replace_between(text: str, body: str) -> str:
    """``text`` with everything between the two marker lines replaced by ``body``."""
    pat = re.compile(
        rf"(^[^\n]*{re.escape(BEGIN)}[^\n]*\n)(.*?)(^[^\n]*{re.escape(END)}[^\n]*$)", re.S | re.M
    )
    if not pat.search(text):
        raise ValueError(f"markers {BEGIN} / {END} not found")
    return pat.sub(lambda m: m.group(1) + body + "\n" + m.group(3), text, count=1)


def main() -> int:
    OPERATIONS.write_text(replace_between(OPERATIONS.read_text(), markdown_table()))
    ENV_EXAMPLE.write_text(replace_between(ENV_EXAMPLE.read_text(), env_block()))
    print(f"wrote {OPERATIONS.relative_to(ROOT)} and {ENV_EXAMPLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
