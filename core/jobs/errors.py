"""Errors raised by the service's use cases (same shape as :mod:`core.errors`)."""

from __future__ import annotations

from core.errors import InputError, MGSError


class NotFound(MGSError):
    code = "not_found"
    http_status = 404


class Unauthorized(MGSError):
    code = "unauthorized"
    http_status = 401


class Forbidden(MGSError):
    code = "forbidden"
    http_status = 403


class Conflict(MGSError):
    code = "conflict"
    http_status = 409


class UploadTooLarge(InputError):
    code = "upload_too_large"
    http_status = 413


class CallbackRefused(InputError):
    code = "callback_url_refused"
    http_status = 422


class LeaseLost(MGSError):
    """This attempt no longer owns the job (canceled, expired or superseded)."""

    code = "lease_lost"
    http_status = 409


class AttemptsExhausted(MGSError):
    code = "attempts_exhausted"


class TooManyRequests(MGSError):
    """A rate or concurrency limit; ``retry_after`` (s) goes to the ``Retry-After`` header."""

    code = "too_many_requests"
    http_status = 429

    def __init__(self, detail: str, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = max(1, int(retry_after))


class UploadTimeout(MGSError):
    code = "upload_timeout"
    http_status = 408


class Unavailable(MGSError):
    """A dependency (database, broker) does not answer; retry with backoff."""

    code = "unavailable"
    http_status = 503


class ConfigurationError(MGSError):
    """The service cannot reach what its settings name (database, broker): fix the settings.

    The CLI exits with :data:`CONFIG_EXIT_CODE`; the API answers 503.
    """

    code = "configuration_error"
    http_status = 503
    exit_code = 3


CONFIG_EXIT_CODE = ConfigurationError.exit_code


class UploadSessionNotFound(NotFound):
    code = "upload_session_not_found"


class BadContentRange(InputError):
    """A chunk's ``Content-Range`` is missing, malformed, or not the next chunk's shape."""

    code = "bad_content_range"
    http_status = 416


class ChunkLengthMismatch(InputError):
    code = "chunk_length_mismatch"
    http_status = 400


class UploadRangeConflict(Conflict):
    """A chunk that is neither the next one nor a re-sent received one (a gap)."""

    code = "upload_range_conflict"
