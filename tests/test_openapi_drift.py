"""The committed openapi.json (and so the SDK) matches the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

ROOT = Path(__file__).resolve().parents[1]


def test_openapi_json_is_current() -> None:
    from scripts.export_openapi import spec_text

    committed = (ROOT / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(spec_text()), (
        "the API changed: run scripts/generate_client.sh and commit openapi.json and clients/python"
    )


def test_every_operation_has_id_and_error_schema() -> None:
    spec = json.loads((ROOT / "openapi.json").read_text())
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("operationId"), (method, path)
            if path.startswith("/v1"):
                assert any(s.startswith("4") for s in op["responses"]), (method, path)
                for status, resp in op["responses"].items():
                    if status.startswith(("4", "5")):
                        assert resp["content"]["application/problem+json"]["schema"][
                            "$ref"
                        ].endswith("/Problem")
