"""The sort-based unique helpers equal np.unique."""

from __future__ import annotations

import numpy as np
import pytest

from core.arrays import unique_int, unique_int_inverse


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unique_int_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for a in (
        rng.integers(-5, 5, 1000),
        rng.integers(0, 2**40, 50_000),
        np.array([], dtype=np.int64),
        np.array([7]),
        np.repeat(np.int64(3), 10),
    ):
        assert np.array_equal(unique_int(a), np.unique(a))
        u, inv = unique_int_inverse(a)
        ru, rinv = np.unique(a, return_inverse=True)
        assert np.array_equal(u, ru) and np.array_equal(inv, rinv.ravel())
        assert np.array_equal(u[inv], a)
