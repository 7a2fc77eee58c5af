"""One conversion to JSON-safe values, for analysis.json and the job summaries stored in Postgres."""

from __future__ import annotations

import math
from typing import Any


def to_jsonable(o: Any) -> Any:
    """``o`` with only JSON types left.

    Parameters
    ----------
    o
        Nested dicts, lists and tuples of Python or NumPy values (scalars and arrays), and
        anything else (paths, datetimes, ...).

    Returns
    -------
    Any
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
