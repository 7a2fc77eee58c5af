"""Start-up checks of the service's settings: is the database there, does the broker answer?

A missing database or an unreachable broker is a configuration error with a message that
says what to do, not an "internal error" on the first request.
"""

from __future__ import annotations

import re

from core.jobs.errors import ConfigurationError


def redact(url: str) -> str:
    """``scheme://user:***@host/db``: a URL fit for a message."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) as psycopg's own connection string."""
    scheme, sep, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def check_database(database_url: str, timeout_s: int = 5) -> None:
    """Connect once; :class:`ConfigurationError` (``database_unavailable``) if that fails."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(database_url), connect_timeout=timeout_s):
            pass
    except psycopg.OperationalError as e:
        reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or repr(e)
        hint = "check MGS_DATABASE_URL and that Postgres runs"
        m = re.search(r'database "([^"]+)" does not exist', str(e))
        if m:
            hint = f"create it: createdb {m.group(1)} (then: medgemma-spatial db upgrade)"
        raise ConfigurationError(
            f"cannot use the database {redact(database_url)}: {reason}; {hint}",
            code="database_unavailable",
        ) from e


def check_broker(broker_url: str, timeout_s: float = 5.0) -> None:
    """PING the Redis broker; :class:`ConfigurationError` (``broker_unavailable``) if it fails."""
    import redis

    try:
        client = redis.Redis.from_url(
            broker_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as e:
        raise ConfigurationError(
            f"cannot reach the broker {redact(broker_url)}: {e}; check MGS_BROKER_URL and "
            "that Redis runs",
            code="broker_unavailable",
        ) from e
