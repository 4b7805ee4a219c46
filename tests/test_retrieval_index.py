"""Index backends: FAISS Flat equals exact search; IVF-PQ and HNSW recall against exact; save/load."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.retrieval.index import (
    ExactIndex,
    FaissIndex,
    SearchIndexError,
    create_index,
    load_index,
    normalise,
)


def clustered(n: int, dim: int, clusters: int, seed: int, rank: int = 3) -> np.ndarray:
    """A mixture of low-rank Gaussian clusters: like real embeddings (clustered, low intrinsic
    dimension), unlike uniform random vectors on which no index structure helps."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    bases = 0.5 * rng.standard_normal((clusters, rank, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    coefficients = rng.standard_normal((n, rank)).astype(np.float32)
    spread = np.einsum("nr,nrd->nd", coefficients, bases[labels])
    return centres[labels] + spread + 0.02 * rng.standard_normal((n, dim)).astype(np.float32)


def recall_at(k: int, approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k found in the approximate top-k (averaged over queries)."""
    hits = [len(set(a[:k]) & set(e[:k])) for a, e in zip(approx, exact)]
    return float(np.mean(hits)) / k


DIM = 32


@pytest.fixture(scope="module")
def data():
    gallery = clustered(4000, DIM, clusters=40, seed=0)
    rng = np.random.default_rng(1)
    query = gallery[rng.choice(len(gallery), 200, replace=False)] + 0.05 * rng.standard_normal(
        (200, DIM)
    ).astype(np.float32)
    exact = ExactIndex(DIM)
    exact.add(gallery)
    return gallery, query, exact.search(query, 10)


def test_faiss_flat_is_identical_to_exact(data):
    gallery, query, exact = data
    flat = create_index("Flat", DIM)
    flat.add(gallery.astype(np.float64))  # any float dtype; converted inside
    found = flat.search(query, 10)
    np.testing.assert_array_equal(found.indices, exact.indices)
    np.testing.assert_allclose(found.scores, exact.scores, atol=1e-5)


def test_ivf_pq_recall_at_10_against_exact(data):
    gallery, query, exact = data
    # 4-bit PQ codes keep training fast in a unit test; benchmarks/faiss_million.py measures 8-bit PQ at scale.
    index = create_index("IVF16,PQ16x4", DIM, nprobe=4)
    index.add(gallery)
    found = index.search(query, 10)
    recall10 = recall_at(10, found.indices, exact.indices)
    print(f"\nIVF16,PQ16x4 nprobe=4, 4000 x {DIM} clustered: recall@10 vs exact = {recall10:.3f}")
    assert recall10 >= 0.5


def test_hnsw_recall_against_exact(data):
    gallery, query, exact = data
    index = create_index("HNSW16", DIM, ef_search=64)
    index.add(gallery)
    recall10 = recall_at(10, index.search(query, 10).indices, exact.indices)
    print(f"\nHNSW16 efSearch=64, 4000 x {DIM} clustered: recall@10 vs exact = {recall10:.3f}")
    assert recall10 >= 0.8


def test_cosine_ignores_vector_length():
    rng = np.random.default_rng(2)
    gallery = rng.standard_normal((50, 8)).astype(np.float32)
    scaled = gallery * rng.uniform(0.1, 10, (50, 1)).astype(np.float32)
    for spec in ("exact", "Flat"):
        a, b = create_index(spec, 8), create_index(spec, 8)
        a.add(gallery)
        b.add(scaled)
        np.testing.assert_array_equal(a.search(gallery[:5] * 3, 5).indices, b.search(gallery[:5], 5).indices)
        np.testing.assert_allclose(a.search(gallery[:5], 1).scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("spec", ["exact", "Flat", "HNSW8"])
def test_save_load_roundtrip_and_add_after_load(spec, tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    index = create_index(spec, 16)
    index.add(vectors[:200])
    index.save(tmp_path)
    loaded = load_index(tmp_path, spec, dim=16)
    assert len(loaded) == 200
    np.testing.assert_array_equal(
        loaded.search(vectors[:20], 3).indices, index.search(vectors[:20], 3).indices
    )
    loaded.add(vectors[200:])
    assert len(loaded) == 300
    assert loaded.search(vectors[250:251], 1).indices[0, 0] == 250


def test_normalise_rejects_bad_input():
    with pytest.raises(SearchIndexError, match="NaN"):
        normalise(np.array([[np.nan, 1.0]]))
    with pytest.raises(SearchIndexError, match="2-D"):
        normalise(np.zeros(3))


@pytest.mark.parametrize(
    ("spec", "message"),
    [("IVF4,PQ7", "multiple of the number of subquantizers"), ("Nonsense", "bad FAISS index string")],
)
def test_bad_factory_strings_are_clear_errors(spec, message):
    with pytest.raises(SearchIndexError, match=message):
        FaissIndex(64, spec)


def test_too_few_vectors_to_train_is_a_clear_error():
    index = create_index("IVF256,PQ8", 32)
    with pytest.raises(SearchIndexError, match="needs at least 256 vectors to train, got 100"):
        index.add(np.random.default_rng(0).standard_normal((100, 32)))


def test_dimension_mismatch_is_a_clear_error():
    index = create_index("exact", 8)
    with pytest.raises(SearchIndexError, match="dimension 4, this index holds dimension 8"):
        index.add(np.ones((2, 4)))
