"""Index backends: FAISS Flat equals exact search; IVF-PQ and HNSW recall against exact; save/load."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.retrieval.index import ExactIndex, FaissIndex, SearchIndexError, create_index, load_index, normalise


def clustered(n: int, dim: int, clusters: int, seed: int, spread: float = 0.35) -> np.ndarray:
    """A Gaussian mixture: cluster centres plus per-point noise (like real embeddings, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    return centres[labels] + spread * rng.standard_normal((n, dim)).astype(np.float32)


def recall_at(k: int, approx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k found in the approximate top-k (averaged over queries)."""
    hits = [len(set(a[:k]) & set(e[:k])) for a, e in zip(approx, exact)]
    return float(np.mean(hits)) / k


@pytest.fixture(scope="module")
def data():
    gallery = clustered(20_000, 64, clusters=100, seed=0)
    query = clustered(200, 64, clusters=100, seed=0)[:0]  # same centres: draw queries near gallery points
    rng = np.random.default_rng(1)
    query = gallery[rng.choice(len(gallery), 200, replace=False)] + 0.2 * rng.standard_normal((200, 64)).astype(np.float32)
    exact = ExactIndex(64)
    exact.add(gallery)
    return gallery, query, exact.search(query, 10)


def test_faiss_flat_is_identical_to_exact(data):
    gallery, query, exact = data
    flat = create_index("Flat", 64)
    flat.add(gallery.astype(np.float64))  # any float dtype; converted inside
    found = flat.search(query, 10)
    np.testing.assert_array_equal(found.indices, exact.indices)
    np.testing.assert_allclose(found.scores, exact.scores, atol=1e-5)


def test_ivf_pq_recall_at_10_against_exact(data):
    gallery, query, exact = data
    index = create_index("IVF64,PQ16", 64, nprobe=8)
    index.add(gallery)
    found = index.search(query, 10)
    recall10 = recall_at(10, found.indices, exact.indices)
    recall1 = float(np.mean(found.indices[:, 0] == exact.indices[:, 0]))
    print(f"IVF64,PQ16 nprobe=8 on 20k x 64 clustered: recall@10 = {recall10:.3f}, top-1 agreement = {recall1:.3f}")
    assert recall10 >= 0.5
    assert recall1 >= 0.5


def test_hnsw_recall_against_exact(data):
    gallery, query, exact = data
    index = create_index("HNSW16", 64, ef_search=64)
    index.add(gallery[:5000])
    small_exact = ExactIndex(64, gallery[:5000]).search(query, 10)
    recall10 = recall_at(10, index.search(query, 10).indices, small_exact.indices)
    print(f"HNSW16 efSearch=64 on 5k x 64 clustered: recall@10 = {recall10:.3f}")
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
    np.testing.assert_array_equal(loaded.search(vectors[:20], 3).indices, index.search(vectors[:20], 3).indices)
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
