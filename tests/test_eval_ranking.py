"""Streaming ranks against naive full-matrix re-implementations of the reference scripts.

Vectors are built from +-0.5 entries (exactly four non-zero), so every dot product is a
multiple of 0.25 computed exactly in float32 whatever the summation order: chunked and
full-matrix scores are bit-identical, and ties are frequent.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geobridge.evaluation.ranking import JUNK, Relevance, TieRule, rank_queries


def naive_layumi(score_row: np.ndarray, good: np.ndarray, junk: np.ndarray, k: int):
    """University-1652's evaluate(): argsort, reverse, drop junk, locate goods."""
    index = np.argsort(score_row, kind="stable")[::-1]
    index = index[~np.isin(index, junk)]
    rows_good = np.flatnonzero(np.isin(index, good))
    return rows_good, index[:k]


def naive_sample4geo(score_row: np.ndarray, positive: int, semis: np.ndarray, k: int):
    """Sample4Geo's calculate_scores(): count strictly greater; hit rate masks semi-positives."""
    higher = score_row > score_row[positive]
    mask = np.ones(score_row.size)
    mask[semis] = 0
    order = np.argsort(-score_row, kind="stable")  # ties: lower index first
    return int(higher.sum()), int((higher * mask).sum()), order[:k]


def exact_vectors(draw, n: int, dim: int) -> np.ndarray:
    out = np.zeros((n, dim), dtype=np.float32)
    for row in range(n):
        cols = draw(st.permutations(range(dim)))[:4]
        signs = draw(st.lists(st.sampled_from([-0.5, 0.5]), min_size=4, max_size=4))
        out[row, cols] = signs
    return out


@st.composite
def label_problems(draw):
    dim = draw(st.integers(4, 6))
    n_query, n_gallery = draw(st.integers(1, 7)), draw(st.integers(1, 16))
    query = exact_vectors(draw, n_query, dim)
    gallery = exact_vectors(draw, n_gallery, dim)
    query_labels = np.array(draw(st.lists(st.integers(0, 4), min_size=n_query, max_size=n_query)))
    gallery_labels = np.array(draw(st.lists(st.integers(-1, 3), min_size=n_gallery, max_size=n_gallery)))
    chunk = draw(st.integers(1, n_query + 1))
    top_k = draw(st.integers(1, 12))
    return query, gallery, query_labels, gallery_labels, chunk, top_k


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(label_problems(), st.sampled_from([32, 1]))
def test_argsort_rule_matches_layumi(problem, passes_up_to):
    import geobridge.evaluation.ranking as ranking

    query, gallery, q_labels, g_labels, chunk, top_k = problem
    ranking.PASSES_UP_TO, saved = passes_up_to, ranking.PASSES_UP_TO
    try:
        result = rank_queries(
            query, gallery, Relevance(q_labels, g_labels), TieRule.ARGSORT_DESC, top_k=top_k, chunk_size=chunk
        )
    finally:
        ranking.PASSES_UP_TO = saved
    scores = query @ gallery.T
    junk = np.flatnonzero(g_labels == JUNK)
    for q in range(len(query)):
        good = np.flatnonzero(g_labels == q_labels[q])
        rows_good, top = naive_layumi(scores[q], good, junk, top_k)
        np.testing.assert_array_equal(result.good_ranks_of(q), rows_good)
        assert result.first_rank[q] == (rows_good[0] if rows_good.size else -1)
        if rows_good.size:
            ordered = naive_layumi(scores[q], good, junk, len(gallery))[1]
            assert result.first_good_index[q] == ordered[rows_good[0]]
        np.testing.assert_array_equal(result.top_indices[q, : top.size], top)
        assert (result.top_indices[q, top.size :] == -1).all()


@st.composite
def pair_problems(draw):
    dim = draw(st.integers(4, 6))
    n_query, n_gallery = draw(st.integers(1, 7)), draw(st.integers(2, 16))
    query = exact_vectors(draw, n_query, dim)
    gallery = exact_vectors(draw, n_gallery, dim)
    positives = np.array(draw(st.lists(st.integers(0, n_gallery - 1), min_size=n_query, max_size=n_query)))
    semis = []
    for p in positives:
        others = [i for i in range(n_gallery) if i != p]
        semis.append(
            np.array(draw(st.lists(st.sampled_from(others), max_size=3, unique=True)), dtype=np.int64)
        )
    return query, gallery, positives, semis, draw(st.integers(1, n_query + 1)), draw(st.integers(1, 12))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair_problems())
def test_strictly_greater_rule_matches_sample4geo(problem):
    query, gallery, positives, semis, chunk, top_k = problem
    relevance = Relevance(positives, np.arange(len(gallery)), tuple(semis))
    result = rank_queries(query, gallery, relevance, TieRule.STRICTLY_GREATER, top_k=top_k, chunk_size=chunk)
    scores = query @ gallery.T
    for q in range(len(query)):
        rank, rank_without_semis, top = naive_sample4geo(scores[q], positives[q], semis[q], top_k)
        assert result.first_rank[q] == rank
        assert result.first_rank[q] - result.semi_positives_above[q] == rank_without_semis
        np.testing.assert_array_equal(result.top_indices[q, : top.size], top)
        np.testing.assert_array_equal(result.top_scores[q, : top.size], scores[q, top])


@pytest.mark.parametrize("passes_up_to", [32, 1])
def test_many_goods_random_floats_agree_with_sorting(monkeypatch, passes_up_to):
    """Many goods per query on continuous scores, several chunk sizes, with both counting paths
    (one comparison pass per good item, and per-row searchsorted buckets)."""
    monkeypatch.setattr("geobridge.evaluation.ranking.PASSES_UP_TO", passes_up_to)
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(400, 32)).astype(np.float32)
    query = rng.normal(size=(37, 32)).astype(np.float32)
    g_labels = rng.integers(-1, 6, size=400)
    q_labels = rng.integers(0, 7, size=37)
    results = [
        rank_queries(query, gallery, Relevance(q_labels, g_labels), TieRule.ARGSORT_DESC, chunk_size=c)
        for c in (1, 8, 64)
    ]
    scores = query.astype(np.float64) @ gallery.T.astype(np.float64)
    junk = np.flatnonzero(g_labels == JUNK)
    for q in range(len(query)):
        rows_good, top = naive_layumi(scores[q], np.flatnonzero(g_labels == q_labels[q]), junk, 10)
        for result in results:
            np.testing.assert_array_equal(result.good_ranks_of(q), rows_good)
            np.testing.assert_array_equal(result.top_indices[q, : top.size], top)


def test_hand_built_ties_follow_each_rule():
    query = np.array([[1.0, 0.0]], dtype=np.float32)
    gallery = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # items 0 and 1 tie
    for positive, argsort_rank in ((0, 1), (1, 0)):
        relevance = Relevance(np.array([positive]), np.arange(3))
        # layumi's reversed argsort puts the higher index first among equal scores
        assert rank_queries(query, gallery, relevance, TieRule.ARGSORT_DESC).first_rank[0] == argsort_rank
        # Sample4Geo: only strictly greater scores count, the tie goes to the true match
        assert rank_queries(query, gallery, relevance, TieRule.STRICTLY_GREATER).first_rank[0] == 0
    assert rank_queries(query, gallery, Relevance(np.array([0]), np.arange(3)), "argsort-desc").top_indices[
        0, :3
    ].tolist() == [1, 0, 2]
    assert rank_queries(
        query, gallery, Relevance(np.array([0]), np.arange(3)), "strictly-greater"
    ).top_indices[0, :3].tolist() == [0, 1, 2]


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must be"):
        rank_queries(
            np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32), Relevance(np.zeros(2), np.zeros(4))
        )
