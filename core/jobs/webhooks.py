"""Webhooks as the Standard Webhooks spec signs them, and the callback URL guard (SSRF)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlparse

from core.jobs.errors import CallbackRefused


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the ``whsec_`` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


def verify(secret: str, hdrs: dict[str, str], body: bytes, tolerance_s: int = 300) -> bool:
    """What a receiver does: check the timestamp window and any ``v1`` signature."""
    h = {k.lower(): v for k, v in hdrs.items()}
    ts = int(h["webhook-timestamp"])
    if abs(time.time() - ts) > tolerance_s:
        return False
    expected = sign(secret, h["webhook-id"], ts, body).split(",", 1)[1]
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in h["webhook-signature"].split()
        if sig.startswith("v1,")
    )


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def check_callback_url(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP(S) URLs, and hosts resolving to loopback/private/link-local addresses.

    Called at submit time and again just before each delivery (DNS may change).
    Blocking (DNS): call it from a thread in async code.
    """
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise CallbackRefused(f"callback_url must be an http(s) URL, not {url!r}")
    if u.username or u.password:
        raise CallbackRefused("callback_url must not carry credentials")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(
            u.hostname, u.port or (443 if u.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as e:
        raise CallbackRefused(f"callback_url host {u.hostname!r} does not resolve: {e}") from e
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _forbidden(ip):
            raise CallbackRefused(
                f"callback_url host {u.hostname!r} resolves to {ip}, a loopback, private or "
                "link-local address (MGS_WEBHOOK_ALLOW_PRIVATE allows it)"
            )
