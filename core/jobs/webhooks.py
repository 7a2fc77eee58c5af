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


_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPAT = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0/96")  # SIIT, ::ffff:0:a.b.c.d
_TEREDO = ipaddress.ip_network("2001::/32")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, translated, IPv4-compatible, 6to4,
    Teredo (server and client) and NAT64. Any of them may route to the embedded host."""
    out: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip in _IPV4_TRANSLATED or ip in _IPV4_COMPAT or any(ip in n for n in _NAT64):
        out.append(low32)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    return out


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO:  # a tunnel to wherever the (obfuscated) client address says
            return True
        if any(_forbidden(v4) for v4 in _embedded_ipv4(ip)):
            return True
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
    )


_BAD_HOST_CHARS = set('[]<>"{}|\\^`')


def _parse(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a callback URL, or :class:`CallbackRefused` for anything
    malformed (bad port, broken IPv6 literal, control characters, credentials)."""
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise CallbackRefused("callback_url must not contain spaces or control characters")
    try:
        u = urlparse(url)
        host = u.hostname
        port = u.port
    except ValueError as e:  # "Port out of range 0-65535", "Invalid IPv6 URL", non-numeric port
        raise CallbackRefused(f"callback_url is not a valid URL: {e}") from e
    if u.scheme not in ("http", "https") or not host:
        raise CallbackRefused(f"callback_url must be an http(s) URL, not {url[:200]!r}")
    if u.username or u.password:
        raise CallbackRefused("callback_url must not carry credentials")
    netloc_host = u.netloc.rsplit("@", 1)[-1]
    if netloc_host.startswith("["):
        literal = netloc_host[1:].split("]", 1)
        if len(literal) != 2 or (literal[1] and not literal[1].startswith(":")):
            raise CallbackRefused("callback_url has a broken IPv6 literal")
        try:
            ipaddress.IPv6Address(literal[0].split("%", 1)[0])
        except ValueError as e:
            raise CallbackRefused("callback_url has a broken IPv6 literal") from e
    elif _BAD_HOST_CHARS & set(host):
        raise CallbackRefused(f"callback_url host {host[:100]!r} is not valid")
    if port == 0:
        raise CallbackRefused("callback_url port must be 1 to 65535")
    return u.scheme, host, port or (443 if u.scheme == "https" else 80)


def check_callback_url(url: str, allow_private: bool) -> None:
    """Refuse malformed and non-HTTP(S) URLs, and hosts resolving to loopback, private,
    link-local or reserved addresses, directly or embedded in IPv6 (6to4, Teredo, NAT64,
    IPv4-mapped/-compatible).

    Called at submit time and again just before each delivery (DNS may change).
    Blocking (DNS): call it from a thread in async code.
    """
    _scheme, host, port = _parse(url)
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as e:
        raise CallbackRefused(f"callback_url host {host[:100]!r} does not resolve: {e}") from e
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _forbidden(ip):
            raise CallbackRefused(
                f"callback_url host {host[:100]!r} resolves to {ip}, a loopback, private, "
                "link-local or reserved address, or one that embeds such an IPv4 address "
                "(MGS_WEBHOOK_ALLOW_PRIVATE allows it)"
            )
