"""Retrieval and localisation metrics as pure functions over ranks and distances.

Conventions used throughout (docs/methods.md#protocols):

* A *rank* is 0-based: rank 0 means the item is first. ``-1`` marks a query with no good item
  in the gallery; such a query is a miss for every recall and scores 0 for AP / reciprocal
  rank, but it is still counted in the denominator (as University-1652's script does).
* Every function returns a fraction in [0, 1] (or metres); protocols turn fractions into the
  percentages written in reports.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from geobridge.geo import haversine_m

NO_MATCH = -1  # rank of a query whose gallery holds no good item


class OnePercentConvention(str, Enum):
    """The four R@1% cut-offs found in the field's evaluation scripts.

    With ``N`` the gallery size and ``rank`` 0-based, a query counts as a hit when
    ``rank < one_percent_cutoff(N, convention)``:

    * ``u1652`` -- University-1652 (layumi): ``CMC[round(0.01 * N)]``, i.e. the top
      ``round(0.01 * N) + 1`` items (Python's ``round``: halves go to the even integer).
    * ``sample4geo`` -- Sample4Geo's CVUSA/CVACT/VIGOR code: cut-off ``N // 100``
      (hit if ``rank < N // 100``; with fewer than 100 items nothing can hit).
    * ``vigor`` -- VIGOR's own code (and SAFA-style CVUSA code): cut-off ``int(0.01 * N) + 1``.
    * ``geobridge`` -- GeoBridge's released code: the top ``max(1, int(0.01 * N))`` items.
    """

    U1652 = "u1652"
    SAMPLE4GEO = "sample4geo"
    VIGOR = "vigor"
    GEOBRIDGE = "geobridge"


def one_percent_cutoff(gallery_size: int, convention: OnePercentConvention | str) -> int:
    """How many top items count for R@1% under ``convention`` (hit iff ``rank < cutoff``).

    The float expressions (``0.01 * N``) are evaluated exactly as the reference scripts do.
    """
    convention = OnePercentConvention(convention)
    n = int(gallery_size)
    if convention is OnePercentConvention.U1652:
        return round(0.01 * n) + 1
    if convention is OnePercentConvention.SAMPLE4GEO:
        return n // 100
    if convention is OnePercentConvention.VIGOR:
        return int(0.01 * n) + 1
    return max(1, int(0.01 * n))


def _ranks(ranks: np.ndarray) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.ndim != 1:
        raise ValueError(f"ranks must be a 1-D array, got shape {ranks.shape}")
    if np.any(ranks < NO_MATCH):
        raise ValueError("ranks must be >= 0, or -1 for a query with no good item")
    return ranks


def hits_within(ranks: np.ndarray, cutoff: int) -> np.ndarray:
    """Boolean per query: its first good item is among the top ``cutoff`` items."""
    ranks = _ranks(ranks)
    return (ranks >= 0) & (ranks < cutoff)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """R@K = CMC[K-1]: fraction of queries whose first good item has ``rank < k``."""
    ranks = _ranks(ranks)
    if ranks.size == 0:
        raise ValueError("no queries")
    return float(hits_within(ranks, k).mean())


def recall_at_one_percent(
    ranks: np.ndarray, gallery_size: int, convention: OnePercentConvention | str
) -> float:
    """R@1% under the named convention (see :class:`OnePercentConvention`)."""
    return recall_at_k(ranks, one_percent_cutoff(gallery_size, convention))


def cmc_curve(ranks: np.ndarray, length: int) -> np.ndarray:
    """CMC[k] for k = 0..length-1: fraction of queries whose first good item has rank <= k."""
    ranks = _ranks(ranks)
    if ranks.size == 0:
        raise ValueError("no queries")
    counts = np.bincount(ranks[(ranks >= 0) & (ranks < length)], minlength=length)[:length]
    return np.cumsum(counts) / ranks.size


def average_precision(good_ranks: np.ndarray) -> float:
    """Market-1501 / University-1652 trapezoidal AP of one query.

    ``good_ranks`` are the 0-based positions of the query's good items in the gallery order with
    junk removed. With ``r_i`` the i-th smallest of them and ``n`` their number:
    ``AP = sum_i (1/n) * (p_prev + p_i) / 2``, ``p_i = (i+1)/(r_i+1)``, ``p_prev = i/r_i``
    (1 when ``r_i = 0``). A query with no good item has AP 0.
    """
    ranks = np.sort(np.asarray(good_ranks, dtype=np.int64))
    if ranks.size == 0:
        return 0.0
    return float(_ap_terms(ranks, np.arange(ranks.size)).sum() / ranks.size)


def _ap_terms(sorted_ranks: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(p_prev + p_i) / 2 for each good item; ``position`` is i (its index among the goods)."""
    r = sorted_ranks.astype(np.float64)
    i = position.astype(np.float64)
    precision = (i + 1.0) / (r + 1.0)
    previous = np.divide(i, r, out=np.ones_like(r), where=sorted_ranks != 0)
    return (previous + precision) / 2.0


def mean_average_precision(good_ranks: np.ndarray, offsets: np.ndarray) -> float:
    """Mean trapezoidal AP over queries given ragged good-item ranks.

    ``good_ranks[offsets[q]:offsets[q+1]]`` are query q's good ranks sorted ascending; a query
    with none contributes 0 but counts in the denominator (``len(offsets) - 1`` queries).
    """
    return float(per_query_average_precision(good_ranks, offsets).mean())


def per_query_average_precision(good_ranks: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Trapezoidal AP of every query (vectorised :func:`average_precision`)."""
    good_ranks = np.asarray(good_ranks, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_queries = offsets.size - 1
    if n_queries <= 0:
        raise ValueError("no queries")
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(n_queries), counts)
    position = np.arange(good_ranks.size) - offsets[owner]
    terms = _ap_terms(good_ranks, position)
    sums = np.bincount(owner, weights=terms, minlength=n_queries)
    return np.divide(sums, counts, out=np.zeros(n_queries), where=counts > 0)


def reciprocal_ranks(ranks: np.ndarray) -> np.ndarray:
    """1 / (rank + 1) per query; 0 for a query with no good item."""
    ranks = _ranks(ranks)
    return np.where(ranks >= 0, 1.0 / (np.maximum(ranks, 0) + 1.0), 0.0)


def mean_reciprocal_rank(ranks: np.ndarray) -> float:
    """Mean reciprocal rank of the first good item (GeoBridge's released code calls it "AP")."""
    ranks = _ranks(ranks)
    if ranks.size == 0:
        raise ValueError("no queries")
    return float(reciprocal_ranks(ranks).mean())


def vigor_hit_rate(ranks: np.ndarray, semi_positives_above: np.ndarray) -> float:
    """VIGOR hit rate: no gallery item other than the positive's semi-positives outranks it.

    ``ranks`` counts every gallery item above the positive; ``semi_positives_above`` counts the
    semi-positives among them, so a hit is ``rank - semi_positives_above == 0``.
    """
    ranks = _ranks(ranks)
    above = np.asarray(semi_positives_above, dtype=np.int64)
    if above.shape != ranks.shape:
        raise ValueError("ranks and semi_positives_above must have the same shape")
    if ranks.size == 0:
        raise ValueError("no queries")
    return float(((ranks >= 0) & (ranks - above == 0)).mean())


def localisation_errors_m(pred_lat, pred_lon, true_lat, true_lon) -> np.ndarray:
    """Great-circle error in metres between predicted and true positions (R = 6,371 km)."""
    return np.atleast_1d(np.asarray(haversine_m(pred_lat, pred_lon, true_lat, true_lon), dtype=np.float64))


def accuracy_within(errors_m: np.ndarray, radius_m: float) -> float:
    """Fraction of queries localised within ``radius_m`` metres (inclusive)."""
    errors = np.asarray(errors_m, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("no errors to summarise")
    return float((errors <= radius_m).mean())


def median_error(errors_m: np.ndarray) -> float:
    """Median localisation error (same unit as the input)."""
    errors = np.asarray(errors_m, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("no errors to summarise")
    return float(np.median(errors))


def mean_error(errors_m: np.ndarray) -> float:
    """Mean localisation error (same unit as the input)."""
    errors = np.asarray(errors_m, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("no errors to summarise")
    return float(errors.mean())


def geobridge_localisation(
    errors_m: np.ndarray, radii_m: tuple[float, ...] = (50.0, 100.0, 150.0)
) -> dict[str, float]:
    """GeoBridge's L@50/100/150 (fractions within each radius, top-1) and mean error in km."""
    metrics = {f"L@{radius:g}": accuracy_within(errors_m, radius) for radius in radii_m}
    metrics["mean_error_km"] = mean_error(errors_m) / 1000.0
    return metrics
