"""Array helpers that stay fast at millions of elements.

NumPy 2.4's ``np.unique`` hashes integer arrays; on keys spread over a wide range (bin
coordinates packed into one int64, graph edges as ``i * n + j``) it measured ~1.2 us per
element here (12 s for 9.75 M edge keys), against 0.65 s for a sort. These give the same
results as ``np.unique`` (sorted unique values, and the inverse) through a sort.
"""

from __future__ import annotations

import numpy as np


def unique_int(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (== ``np.unique(a)``)."""
    s = np.sort(np.asarray(a).ravel())
    if s.size == 0:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_int_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and the inverse index (== ``np.unique(a, return_inverse=True)``)."""
    a = np.asarray(a).ravel()
    order = np.argsort(a, kind="stable")
    s = a[order]
    if s.size == 0:
        return s, np.zeros(0, dtype=np.intp)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    inv = np.empty(s.size, dtype=np.intp)
    inv[order] = np.cumsum(new) - 1
    return s[new], inv
