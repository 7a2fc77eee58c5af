"""The console's static files: the vendored viewer's own <style> is the one the CSP allows,
and the vendored libraries carry their licences."""

from __future__ import annotations

import base64
import hashlib
import re

from api.routers.console import CONSOLE_DIR, OSD_STYLE_SHA256, SECURITY_HEADERS


def test_csp_allows_exactly_the_viewers_style() -> None:
    js = (CONSOLE_DIR / "vendor" / "openseadragon" / "openseadragon.min.js").read_text()
    styles = re.findall(r'createElement\("style"\);[^;]*;\w+\.textContent="([^"]*)"', js)
    assert len(styles) == 1, styles  # a new version with more inline styles needs a look
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"sha256-{digest}" == OSD_STYLE_SHA256
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert f"style-src 'self' '{OSD_STYLE_SHA256}';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_vendored_libraries_carry_their_licences() -> None:
    osd = CONSOLE_DIR / "vendor" / "openseadragon"
    assert (
        "BSD" in (osd / "LICENSE.txt").read_text()
        or "Redistribution" in (osd / "LICENSE.txt").read_text()
    )
    assert (osd / "VERSION").read_text().startswith("openseadragon 6.1.1")
