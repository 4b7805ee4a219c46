"""Is system A better than system B on the same queries? A paired bootstrap over queries.

Two models evaluated on the same queries give two per-query scores (a hit at rank 1, a
reciprocal rank, ...). Resampling the *queries* with replacement and recomputing the difference
of the means keeps the pairing, so the interval reflects how much the difference depends on
which queries happened to be drawn. At a few hundred queries, R@1 differences of a few points
are often inside it: the interval says whether a table's ordering means anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedDifference:
    """Mean of A, mean of B, their difference and its bootstrap interval (all in percent when
    the per-query scores are 0/1 hits scaled by 100, as :func:`paired_bootstrap` does)."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    confidence: float
    n_queries: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    n_resamples: int = 4000,
    confidence: float = 0.95,
    seed: int = 0,
    scale: float = 100.0,
) -> PairedDifference:
    """Percentile bootstrap interval of ``mean(a) - mean(b)`` over queries (paired).

    ``scores_a[i]`` and ``scores_b[i]`` belong to the same query; ``scale`` turns fractions into
    percentages. Deterministic for a given ``seed``: ``scipy.stats.bootstrap`` (``paired=True``,
    percentile method) draws its resamples from ``numpy.random.default_rng(seed)`` and gives the
    intervals of the hand-written resampling it replaced (tests/test_eval_significance.py checks
    it against that formula). One query: every resample is that query.
    """
    a = np.asarray(scores_a, dtype=np.float64).ravel()
    b = np.asarray(scores_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same queries: got {a.size} and {b.size} scores")
    if a.size == 0:
        raise ValueError("no queries to compare")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diff = (a - b) * scale
    if diff.size == 1:  # scipy needs two observations; one query resamples to itself
        low = high = float(diff[0])
    else:
        interval = stats.bootstrap(
            (a * scale, b * scale),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=int(n_resamples),
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        low, high = interval.low, interval.high
    return PairedDifference(
        a=float(a.mean() * scale),
        b=float(b.mean() * scale),
        difference=float(diff.mean()),
        low=float(low),
        high=float(high),
        confidence=float(confidence),
        n_queries=int(a.size),
    )
