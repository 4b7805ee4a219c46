"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), as in layumi's University-1652 code.

``k_reciprocal_distances(query, gallery, k1=20, k2=6, lambda_value=0.3)`` follows layumi's
``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)`` step by step, on the cosine
similarities of L2-normalised features of the queries and the gallery stacked together
(``n = Q + N`` items):

1. original distance ``d = (2 - 2 s)^2`` (float32), each row divided by its maximum;
2. ``N(i, k)``: the ``k + 1`` nearest items of ``i`` (itself included), by ``d`` ascending;
3. k-reciprocal neighbours ``R(i, k) = {j in N(i, k) : i in N(j, k)}``;
4. expansion ``R*(i) = R(i, k1)`` united with every ``R(c, round(k1 / 2))``, ``c in R(i, k1)``,
   that shares MORE than two thirds of its items with ``R(i, k1)`` (the code's ``>``);
5. ``V[i, j] = exp(-d[i, j])`` over ``j in R*(i)``, normalised to sum 1;
6. local query expansion (``k2 > 1``): ``V[i] = mean of V[j]`` over the ``k2`` nearest ``j``;
7. Jaccard distance ``dJ(i, j) = 1 - m / (2 - m)``, ``m = sum_k min(V[i, k], V[j, k])``;
8. final distance ``(1 - lambda) dJ + lambda d``, the query rows against the gallery columns.

Neighbour lists use a stable sort (the reference's ``np.argpartition`` leaves the order of exact
ties unspecified). The final distances are ranked ascending, ``np.argsort(distance)`` as in
layumi's re-ranked evaluation (``TieRule.ARGSORT_ASC``: among equal distances the lower
gallery index first). Memory: three ``n x n`` float32 matrices, as in the reference (about
18 GB for University-1652's 37,855 drone queries and 951 satellite images; with
``multi_query`` there are 701 queries, about 30 MB).
"""

from __future__ import annotations

import numpy as np

DEFAULT_RERANK: tuple[int, int, float] = (20, 6, 0.3)  # layumi's (and the paper's) k1, k2, lambda
ROW_BLOCK = 1024  # rows sorted at a time when listing neighbours


def check_rerank(value: object) -> tuple[int, int, float] | None:
    """``None``/``False``: no re-ranking; ``True``: (20, 6, 0.3); else ``(k1, k2, lambda)``."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_RERANK
    numbers = (int, float, np.integer, np.floating)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 3
        or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"rerank must be True or (k1, k2, lambda_value), got {value!r}")
    k1, k2, lam = value
    if not float(k1).is_integer() or not float(k2).is_integer():
        raise ValueError(f"rerank k1 and k2 must be integers, got {k1!r} and {k2!r}")
    k1, k2, lam = int(k1), int(k2), float(lam)
    if k1 < 1 or k2 < 1 or not 0.0 <= lam <= 1.0:
        raise ValueError(f"rerank needs k1 >= 1, k2 >= 1 and 0 <= lambda_value <= 1, got ({k1}, {k2}, {lam})")
    return k1, k2, lam


def _original_distances(features: np.ndarray) -> np.ndarray:
    sim = features @ features.T
    dist = np.square(2.0 - 2.0 * sim).astype(np.float32)
    return np.ascontiguousarray((dist / dist.max(axis=0)).T)  # the reference's column max, transposed


def _nearest(dist: np.ndarray, width: int) -> np.ndarray:
    """Each row's ``width`` nearest columns, ascending distance, ties by lower index (stable)."""
    n = dist.shape[0]
    width = min(width, n)
    out = np.empty((n, width), dtype=np.int64)
    for lo in range(0, n, ROW_BLOCK):
        out[lo : lo + ROW_BLOCK] = np.argsort(dist[lo : lo + ROW_BLOCK], axis=1, kind="stable")[:, :width]
    return out


def _reciprocal(nearest: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = nearest[i, : k + 1]
    backward = nearest[forward, : k + 1]
    return forward[(backward == i).any(axis=1)]


def k_reciprocal_distances(
    query: np.ndarray, gallery: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked (Q, N) distances of L2-normalised ``query`` (Q, D) and ``gallery`` (N, D)."""
    query = np.asarray(query, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    n_query = query.shape[0]
    dist = _original_distances(np.concatenate([query, gallery]))
    n = dist.shape[0]
    nearest = _nearest(dist, max(k1 + 1, k2))
    half = int(np.around(k1 / 2))
    V = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        reciprocal = _reciprocal(nearest, i, k1)
        expansion = reciprocal
        for candidate in reciprocal:
            theirs = _reciprocal(nearest, int(candidate), half)
            if len(np.intersect1d(theirs, reciprocal)) > 2.0 / 3.0 * len(theirs):
                expansion = np.append(expansion, theirs)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    if k2 != 1:
        expanded = np.empty_like(V)
        for i in range(n):
            expanded[i] = np.mean(V[nearest[i, :k2]], axis=0)
        V = expanded
    final = np.empty((n_query, n - n_query), dtype=np.float32)
    gallery_rows = V[n_query:]  # only query-vs-gallery Jaccard distances are kept
    for i in range(n_query):
        shared = np.flatnonzero(V[i])  # min(V[i, k], V[j, k]) is 0 wherever V[i, k] is
        m = np.minimum(V[i, shared][None, :], gallery_rows[:, shared]).sum(axis=1, dtype=np.float32)
        jaccard = 1.0 - m / (2.0 - m)
        final[i] = jaccard * (1.0 - lambda_value) + dist[i, n_query:] * lambda_value
    return final
