"""docs/lims.md: the webhook verification code works against the service's signer, and every
error code the code base raises is documented."""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LIMS = ROOT / "docs" / "lims.md"


def _verify_snippet() -> Any:
    text = LIMS.read_text()
    block = text.split("<!-- lims:verify:begin -->", 1)[1].split("<!-- lims:verify:end -->")[0]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    ns: dict[str, Any] = {}
    exec(compile(code, str(LIMS), "exec"), ns)
    return ns["verify_webhook"]


def test_documented_webhook_verification_matches_the_signer() -> None:
    from core.jobs.webhooks import headers

    verify = _verify_snippet()
    import base64

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = json.dumps({"type": "job.succeeded", "data": {"id": "x"}}).encode()
    h = headers(secret, "msg_1", body)
    assert verify(secret, h, body)
    assert verify(secret, {k.title(): v for k, v in h.items()}, body)  # header case
    assert not verify(secret, h, body + b" ")
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    assert not verify(other, h, body)
    old = headers(secret, "msg_1", body, timestamp=int(time.time()) - 3600)
    assert not verify(secret, old, body)


def test_every_error_code_is_documented() -> None:
    source = "\n".join(p.read_text() for d in ("core", "api") for p in (ROOT / d).rglob("*.py"))
    codes = set(re.findall(r"\bcode\s*=\s*\"([a-z_]+)\"", source))
    codes |= set(
        re.findall(r"^\s+\d{3}: \"([a-z_]+)\",$", (ROOT / "api" / "errors.py").read_text(), re.M)
    )
    documented = set(re.findall(r"`([a-z_]+)`", LIMS.read_text()))
    assert codes, "no error codes found"
    missing = codes - documented
    assert not missing, f"docs/lims.md does not document {sorted(missing)}"
