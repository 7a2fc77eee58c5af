"""One conversion to JSON-safe values, for analysis.json and the job summaries stored in Postgres.

``JSONValue`` and ``JSONObject`` name arbitrary JSON where it crosses a module boundary (a
job's stored options and summary, a report's provenance blocks): a recursive alias, checked
by mypy, where ``Any`` would switch the checking off.
"""

from __future__ import annotations

import math
from typing import TypeAlias

# pydantic's recursive alias (list, dict, str, bool, int, float, None), so that the
# documents the contract models dump (core/results.py, core/features.py) are JSONValue too
from pydantic import JsonValue as JSONValue

JSONObject: TypeAlias = dict[str, JSONValue]


def to_jsonable(o: object) -> JSONValue:
    """``o`` with only JSON types left.

    Parameters
    ----------
    o
        Nested dicts, lists and tuples of Python or NumPy values (scalars and arrays), and
        anything else (paths, datetimes, ...).

    Returns
    -------
    JSONValue
        Dicts (keys made ``str``), lists, ``str``, ``int``, ``float``, ``bool`` and ``None``:
        NumPy values become Python values, non-finite floats ``None`` (JSON has no NaN, and
        Postgres refuses it in ``jsonb``), anything else its ``str``.
    """
    if o is None or isinstance(o, (str, bool, int)):
        return o
    if isinstance(o, float):
        return float(o) if math.isfinite(o) else None  # also NumPy's float64, a float subclass
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if type(o).__module__ == "numpy" and hasattr(o, "tolist"):  # arrays and scalars
        return to_jsonable(o.tolist())
    return str(o)


def json_object(o: object) -> JSONObject:
    """:func:`to_jsonable` of a mapping: a ``dict`` with ``str`` keys (``{}`` for anything else).

    Parameters
    ----------
    o
        A mapping of Python or NumPy values.

    Returns
    -------
    JSONObject
        The mapping with only JSON types left.
    """
    return as_object(to_jsonable(o))


def as_object(v: JSONValue | None) -> JSONObject:
    """``v`` when it is a JSON object, else ``{}`` (reading an optional block of a document).

    Parameters
    ----------
    v
        A value read from a JSON document.

    Returns
    -------
    JSONObject
        ``v`` or an empty object.
    """
    return v if isinstance(v, dict) else {}


def as_number(v: JSONValue) -> float:
    """``float(v)`` for a JSON number or numeric string; ``TypeError`` as ``float`` raises it.

    Parameters
    ----------
    v
        A value read from a JSON document.

    Returns
    -------
    float
        The value as a float.
    """
    if isinstance(v, bool | int | float | str):
        return float(v)
    raise TypeError(f"float() argument must be a string or a real number, not {type(v).__name__!r}")


__all__ = ["JSONObject", "JSONValue", "as_number", "as_object", "json_object", "to_jsonable"]
