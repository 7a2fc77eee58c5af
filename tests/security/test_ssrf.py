"""Item 10: webhook callback URLs that point inside the network are refused with the
production setting (MGS_WEBHOOK_ALLOW_PRIVATE=false), at submit; the relay never follows
a redirect (a public receiver cannot bounce a webhook to an internal address)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.jobs.errors import CallbackRefused
from core.jobs.webhooks import check_callback_url
from tests.service.conftest import make_key, start_api, start_relay
from tests.service.helpers import BRAIN_H5AD, client, upload

INTERNAL = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://10.0.0.5/hook",
    "http://10.255.255.255/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://localhost/hook",  # a name resolving to loopback
    "http://localhost.:9000/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "https://127.0.0.1:443/hook",
]
BAD_SCHEME = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/x",
    "http://user:pw@example.com/hook",
    "http:///nohost",
]


@pytest.mark.parametrize("url", INTERNAL + BAD_SCHEME)
def test_guard_refuses(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check_callback_url(url, allow_private=False)


def test_guard_allows_public_address_literal() -> None:
    check_callback_url("https://93.184.215.14/hook", allow_private=False)


@pytest.fixture(scope="module")
def prod_api(service_env: dict[str, str], tmp_path_factory: Any) -> Iterator[dict[str, str]]:
    env = {**service_env, "MGS_WEBHOOK_ALLOW_PRIVATE": "false", "MGS_RATE_LIMIT_PER_MINUTE": "0"}
    proc, base = start_api(env, tmp_path_factory.mktemp("ssrf-logs") / "api.log")
    key, _ = make_key(env, f"lab-ssrf-{uuid.uuid4().hex[:6]}")
    with client(base, f"Bearer {key}") as c:
        up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
    yield {"base": base, "auth": f"Bearer {key}", "upload": up}
    proc.stop()


@pytest.mark.parametrize("url", INTERNAL + BAD_SCHEME)
def test_submit_refuses_internal_callback(prod_api: dict[str, str], url: str) -> None:
    with client(prod_api["base"], prod_api["auth"]) as c:
        r = c.post("/v1/jobs", json={"upload_id": prod_api["upload"], "callback_url": url})
    assert r.status_code == 422, (url, r.text)
    assert r.json()["code"] in ("callback_url_refused", "validation_error"), r.text


class _Server:
    def __init__(self, redirect_to: str | None = None) -> None:
        self.hits: list[str] = []
        me = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                me.hits.append(self.path)
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()


def test_relay_never_follows_a_redirect(
    api: str, service_env: dict[str, str], tenant_a: dict[str, str], tmp_path_factory: Any
) -> None:
    """The receiver stands in for a public host (the shared API allows loopback so that it is
    reachable); it answers 307 to an internal address, which must never be contacted."""
    internal = _Server()
    bouncer = _Server(redirect_to=internal.url)
    relay = start_relay(service_env, tmp_path_factory.mktemp("ssrf-relay") / "relay.log")
    try:
        with client(api, tenant_a["auth"]) as c:
            up = upload(c, BRAIN_H5AD.read_bytes(), "b.h5ad").json()["id"]
            job = c.post("/v1/jobs", json={"upload_id": up, "callback_url": bouncer.url}).json()
            assert c.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200  # emits a webhook
        deadline = time.time() + 30
        while not bouncer.hits and time.time() < deadline:
            time.sleep(0.2)
        assert bouncer.hits, "the relay did not deliver the webhook"
        time.sleep(2)
        assert internal.hits == [], "the relay followed a redirect to an internal address"
    finally:
        relay.stop()
        bouncer.close()
        internal.close()
