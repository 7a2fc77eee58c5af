"""The automatic domain count: silhouette and stability together, every candidate recorded."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from core.analysis.domains import ari, choose_k, find_domains, stability


def _cands(rows: list[tuple[int, float, float]]) -> list[dict[str, float]]:
    return [{"k": k, "silhouette": s, "stability": t} for k, s, t in rows]


def test_nearly_as_good_larger_count_is_not_collapsed_to_two() -> None:
    """The issue's case: silhouette 0.688 for 2 against 0.678 for 5, both stable."""
    c = _cands(
        [(2, 0.688, 0.99), (3, 0.55, 0.70), (4, 0.60, 0.72), (5, 0.678, 0.97), (6, 0.5, 0.6)]
    )
    k, close = choose_k(c)
    assert k == 5
    assert close == 2  # and the report is told the two counts are close
    assert all("score" in x for x in c)


def test_unstable_count_is_not_chosen_for_its_silhouette() -> None:
    c = _cands([(2, 0.60, 0.98), (3, 0.62, 0.40), (4, 0.30, 0.9)])
    k, close = choose_k(c)
    assert k == 2 and close is None


def test_clear_best_has_no_close_alternative() -> None:
    c = _cands([(2, 0.30, 0.99), (3, 0.70, 0.98), (4, 0.40, 0.80)])
    assert choose_k(c) == (3, None)


def test_without_any_stable_count_the_most_stable_near_the_best_wins() -> None:
    c = _cands([(2, 0.20, 0.50), (3, 0.21, 0.60), (4, 0.10, 0.70)])
    assert choose_k(c)[0] == 3


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
    assert all({"silhouette", "stability", "score", "chosen"} <= set(c) for c in r.candidates)
    assert sum(c["chosen"] for c in r.candidates) == 1
    assert r.method == "silhouette+stability" and r.stability is not None
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
