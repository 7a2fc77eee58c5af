"""Per-key request rate: a token bucket in Redis, so every API process shares it.

Capacity ``MGS_RATE_LIMIT_PER_MINUTE`` tokens, refilled at that rate; one request
takes one token. An empty bucket answers 429 with ``Retry-After`` (seconds until a
token is back). If Redis cannot be reached the request is let through (the limit
protects capacity; it must not turn a broker hiccup into an outage).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from core.jobs.errors import TooManyRequests

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: capacity, refill per second, now (s). Returns {allowed, wait_ms}.
_LUA = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil then tokens = cap; ts = now end
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return {allowed, wait_ms}
"""


async def check_rate(redis: Redis, key_digest: str, per_minute: int) -> None:
    """Take one token from the bucket of ``key_digest`` or raise :class:`TooManyRequests`."""
    if per_minute <= 0:
        return
    try:
        allowed, wait_ms = await redis.eval(
            _LUA, 1, f"mgs:rate:{key_digest}", per_minute, per_minute / 60.0, time.time()
        )
    except Exception as e:  # Redis down: fail open, say so
        log.warning("rate limit not checked (Redis: %s)", type(e).__name__)
        return
    if not int(allowed):
        raise TooManyRequests(
            f"over {per_minute} requests per minute for this API key (MGS_RATE_LIMIT_PER_MINUTE)",
            retry_after=max(1, math.ceil(int(wait_ms) / 1000)),
            code="rate_limited",
        )
