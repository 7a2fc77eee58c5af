"""The automatic domain count: boundary valleys and stability together, every candidate recorded."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from core.analysis.domains import (
    _assign,
    ari,
    boundary_valley,
    choose_k,
    find_domains,
    kmeans,
    stability,
)


def _cands(rows: list[tuple[int, float, float, float]]) -> list[dict[str, float]]:
    return [{"k": k, "silhouette": s, "stability": t, "valley": v} for k, s, t, v in rows]


def test_a_finer_count_with_valleys_wins_over_the_best_silhouette() -> None:
    """The issue's case: 2 has the best silhouette, but 4 is parted by valleys and stable."""
    c = _cands(
        [
            (2, 0.70, 1.00, 0.08),
            (3, 0.64, 1.00, 0.07),
            (4, 0.60, 0.99, 0.50),
            (5, 0.57, 1.00, 1.00),  # splits a domain: no valley between the halves
            (6, 0.52, 0.98, 1.00),
        ]
    )
    k, close = choose_k(c)
    assert k == 4 and close is None
    assert [x["score"] for x in c] == [0.0, 0.0, 0.0, 0.1, 0.1]


def test_unstable_count_is_not_chosen_for_its_valleys() -> None:
    c = _cands([(2, 0.60, 0.98, 0.1), (3, 0.62, 0.40, 0.1), (4, 0.30, 0.7, 1.0)])
    assert choose_k(c) == (2, None)


def test_close_counts_are_flagged() -> None:
    # the next count misses the valley bound by less than CLOSE_MARGIN: the report says so
    c = _cands([(2, 0.6, 1.0, 0.1), (3, 0.5, 1.0, 0.3), (4, 0.4, 1.0, 0.93), (5, 0.3, 1.0, 1.0)])
    assert choose_k(c) == (3, 4)
    # the chosen count's weakest boundary is barely a valley: the coarser count is close
    c = _cands([(2, 0.6, 1.0, 0.1), (3, 0.5, 1.0, 0.88), (4, 0.4, 1.0, 1.0)])
    assert choose_k(c) == (3, 2)


def test_without_any_admissible_count_the_nearest_miss_wins() -> None:
    c = _cands([(2, 0.20, 0.50, 0.95), (3, 0.21, 0.85, 0.95), (4, 0.10, 0.70, 1.0)])
    assert choose_k(c)[0] == 3


def test_boundary_valley_separates_modes_from_splits() -> None:
    """Two blobs are parted by a valley; k-means cutting one blob in two is not."""
    rng = np.random.default_rng(0)
    two = np.vstack(
        [
            rng.normal(0, 1, size=(3000, 5)),
            rng.normal(0, 1, size=(1000, 5)) + np.array([6, 0, 0, 0, 0]),
        ]
    ).astype(np.float32)
    _, C, _ = kmeans(two, 2, 0)
    assert boundary_valley(two, _assign(two, C), C) < 0.2
    one = rng.normal(0, 1, size=(4000, 5)).astype(np.float32)
    _, C, _ = kmeans(one, 2, 0)
    assert boundary_valley(one, _assign(one, C), C) > 0.9
    # and three blobs cut into four: the split blob's halves have no valley between them
    three = np.vstack([two, rng.normal(0, 1, size=(2000, 5)) + np.array([0, 6, 0, 0, 0])]).astype(
        np.float32
    )
    _, C3, _ = kmeans(three, 3, 0)
    _, C4, _ = kmeans(three, 4, 0)
    assert boundary_valley(three, _assign(three, C3), C3) < 0.2
    assert boundary_valley(three, _assign(three, C4), C4) > 0.9
    # scale-free
    _, C, _ = kmeans(two * 40, 2, 0)
    assert boundary_valley(two * 40, _assign(two * 40, C), C) < 0.2


def test_ari() -> None:
    a = np.array([0, 0, 1, 1, 2, 2])
    assert ari(a, a) == 1.0
    assert ari(a, np.array([5, 5, 7, 7, 9, 9])) == 1.0
    assert ari(a, np.array([0, 1, 0, 1, 0, 1])) < 0.1


def test_stability_is_high_for_the_true_count() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [6, 0], [0, 6]], dtype=np.float32)
    X = np.vstack([c + rng.normal(0, 0.7, size=(300, 2)) for c in centres]).astype(np.float32)
    s3 = stability(X, 3, np.arange(len(X)), seed=0)
    s5 = stability(X, 5, np.arange(len(X)), seed=0)
    assert s3 > 0.95 and s5 < s3


def _field(
    n_side: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix]:
    """A grid of spots in 5 domains (bands plus an island), each with its own composition."""
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(n_side * n_side), n_side)
    xy = np.stack([c * 100.0, r * 100.0], 1)
    truth = np.minimum(c // (n_side // 4), 3)
    island = (r - n_side / 2) ** 2 + (c - n_side / 3) ** 2 < (n_side / 7) ** 2
    truth[island] = 4
    comp = 0.1 + 0.9 * np.eye(6)[:5]  # each domain led by its own cell type
    probs = np.stack([rng.dirichlet(comp[d] * 6 + 0.05) for d in truth]).astype(np.float32)
    pcs = (probs @ rng.normal(size=(6, 10)) + rng.normal(0, 0.3, size=(len(xy), 10))).astype(
        np.float32
    )
    pairs = cKDTree(xy).query_pairs(101, output_type="ndarray")
    A = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy),) * 2)
    return pcs, probs, xy, truth, (A + A.T).tocsr()


def test_find_domains_records_every_candidate_and_recovers_the_domains() -> None:
    pcs, probs, xy, truth, A = _field(48, 1)
    r = find_domains(pcs, probs, xy, "visium", A, px_per_um=1.0, seed=0)
    assert [c["k"] for c in r.candidates] == list(range(2, 11))
    assert all(
        {"silhouette", "stability", "valley", "score", "chosen"} <= set(c) for c in r.candidates
    )
    assert sum(c["chosen"] for c in r.candidates) == 1
    assert r.method == "valley+stability" and r.stability is not None
    assert r.k == 5
    assert ari(r.labels, truth) > 0.85
    # seeded: the same call gives the same answer
    r2 = find_domains(pcs, probs, xy, "visium", A, px_per_um=1.0, seed=0)
    assert np.array_equal(r.labels, r2.labels) and r.candidates == r2.candidates


def test_fixed_count_still_records_its_separation() -> None:
    pcs, probs, xy, _, A = _field(30, 2)
    r = find_domains(pcs, probs, xy, "visium", A, px_per_um=1.0, seed=0, n_domains=3)
    assert r.method == "fixed" and r.k == 3
    assert [c["k"] for c in r.candidates] == [3] and r.candidates[0]["chosen"]
