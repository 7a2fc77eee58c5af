"""Which exceptions mean "a dependency is unavailable" rather than "this job is bad".

Workers requeue a job hit by one without using an attempt; the API answers 503 with
``database_unavailable`` or ``storage_unavailable`` and ``Retry-After`` instead of 500.
"""

from __future__ import annotations

import errno

DATABASE = "database"
STORAGE = "storage"

_STORAGE_5XX = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "503", "500"}
_NET_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EPIPE,
}


def dependency_down(exc: BaseException) -> str | None:
    """``"database"``, ``"storage"`` or ``None`` (not an outage) for an exception or its causes."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        kind = _classify(e)
        if kind is not None:
            return kind
        e = e.__cause__ or e.__context__
    return None


def _classify(e: BaseException) -> str | None:
    try:
        from sqlalchemy import exc as sa_exc

        if isinstance(e, sa_exc.DBAPIError) and (
            e.connection_invalidated
            or isinstance(e, sa_exc.OperationalError | sa_exc.InterfaceError)
        ):
            return DATABASE
        if isinstance(e, sa_exc.TimeoutError):  # pool checkout timed out
            return DATABASE
    except ImportError:  # pragma: no cover
        pass
    try:
        import psycopg

        if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError):
            return DATABASE
    except ImportError:  # pragma: no cover
        pass
    try:
        from botocore import exceptions as bc

        if isinstance(
            e,
            bc.EndpointConnectionError
            | bc.ConnectionClosedError
            | bc.ConnectTimeoutError
            | bc.ReadTimeoutError
            | bc.HTTPClientError,
        ):
            return STORAGE
        if isinstance(e, bc.ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return STORAGE if code in _STORAGE_5XX or int(status) >= 500 else None
    except ImportError:  # pragma: no cover
        pass
    try:
        from s3transfer.exceptions import RetriesExceededError

        if isinstance(e, RetriesExceededError):
            return STORAGE
    except ImportError:  # pragma: no cover
        pass
    return None


def is_transient(exc: BaseException) -> bool:
    """A database or storage outage (or a plain network failure reaching one)."""
    if dependency_down(exc) is not None:
        return True
    return isinstance(exc, ConnectionError | TimeoutError) or (
        isinstance(exc, OSError) and exc.errno in _NET_ERRNOS
    )
