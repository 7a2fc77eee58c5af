"""One error class per failure, each with a stable ``code``.

The CLI maps :class:`InputError` to exit code 2, the API to a 4xx
``application/problem+json`` and a failed job stores ``{code, detail}``.
"""

from __future__ import annotations


class MGSError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``detail`` is for people."""

    code = "internal_error"
    http_status = 500

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


class InputError(MGSError):
    """The sample (or an option) is unusable; the user must change something."""

    code = "invalid_input"
    http_status = 422


class UnsupportedFormat(InputError):
    code = "unsupported_format"
    http_status = 415


class CorruptFile(InputError):
    code = "corrupt_file"


class MissingCounts(InputError):
    code = "missing_counts"


class MissingCoordinates(InputError):
    code = "missing_coordinates"


class BadCoordinates(InputError):
    code = "bad_coordinates"


class ImageTooLarge(InputError):
    code = "image_too_large"


class UnsafeFile(InputError):
    """External links, virtual datasets, archive members escaping the target, bombs."""

    code = "unsafe_file"


class OverMemoryBudget(InputError):
    code = "over_memory_budget"
    http_status = 413


class EmptyAfterQC(InputError):
    code = "empty_after_qc"


class NoMarkerOverlap(InputError):
    code = "no_marker_overlap"


class BadMarkerTable(InputError):
    code = "bad_marker_table"


class BadOption(InputError):
    code = "invalid_option"


class PromptLeakage(InputError):
    code = "prompt_leakage"


class ModelUnavailable(MGSError):
    code = "model_unavailable"
    http_status = 503
