"""Exact chunked top-k equals a naive full-matrix sort, ties going to the lower gallery index."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geobridge.retrieval.topk import topk


def naive_topk(query: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full score matrix, each row sorted by (-score, index)."""
    scores = query.astype(np.float32) @ gallery.astype(np.float32).T
    k = min(k, gallery.shape[0])
    order = np.stack([np.lexsort((np.arange(gallery.shape[0]), -row))[:k] for row in scores])
    return np.take_along_axis(scores, order, axis=1), order


@st.composite
def problems(draw):
    dim = draw(st.integers(1, 6))
    n_query = draw(st.integers(1, 7))
    n_gallery = draw(st.integers(1, 60))
    # Small integers: products are exact in float32 and ties are frequent.
    values = st.integers(-2, 2)
    query = np.array(draw(st.lists(values, min_size=n_query * dim, max_size=n_query * dim)), np.float32)
    gallery = np.array(draw(st.lists(values, min_size=n_gallery * dim, max_size=n_gallery * dim)), np.float32)
    k = draw(st.integers(1, n_gallery + 3))
    chunk = draw(st.integers(1, n_gallery + 5))
    return query.reshape(n_query, dim), gallery.reshape(n_gallery, dim), k, chunk


@settings(max_examples=300, deadline=None)
@given(problems())
def test_chunked_topk_equals_naive_full_sort(problem):
    query, gallery, k, chunk = problem
    result = topk(query, gallery, k, chunk_size=chunk)
    want_scores, want_indices = naive_topk(query, gallery, k)
    assert result.indices.dtype == np.int64 and result.scores.dtype == np.float32
    np.testing.assert_array_equal(result.indices, want_indices)
    np.testing.assert_array_equal(result.scores, want_scores)


def test_all_equal_scores_return_the_lowest_indices_in_order():
    gallery = np.ones((10, 3), np.float32)
    result = topk(np.ones((2, 3), np.float32), gallery, 4, chunk_size=3)
    np.testing.assert_array_equal(result.indices, [[0, 1, 2, 3], [0, 1, 2, 3]])


def test_random_float_vectors_match_naive_regardless_of_chunk_size():
    rng = np.random.default_rng(1)
    query = rng.standard_normal((20, 16)).astype(np.float32)
    gallery = rng.standard_normal((500, 16)).astype(np.float32)
    whole = topk(query, gallery, 10, chunk_size=500)
    _, want = naive_topk(query, gallery, 10)
    np.testing.assert_array_equal(whole.indices, want)
    for chunk in (1, 7, 64, 499):
        np.testing.assert_array_equal(topk(query, gallery, 10, chunk_size=chunk).indices, want)


def test_k_larger_than_gallery_is_clamped():
    result = topk(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32), 5)
    assert result.indices.shape == (2, 2)
    np.testing.assert_array_equal(result.indices, [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    ("query", "gallery", "k", "message"),
    [
        (np.zeros((2, 3)), np.zeros((4, 5)), 1, "dimension 3"),
        (np.zeros(3), np.zeros((4, 3)), 1, "2-D"),
        (np.zeros((2, 3)), np.zeros((4, 3)), 0, "at least 1"),
        (np.full((2, 3), np.nan), np.zeros((4, 3)), 1, "NaN"),
    ],
)
def test_bad_input_is_a_clear_error(query, gallery, k, message):
    with pytest.raises(ValueError, match=message):
        topk(query, gallery, k)
