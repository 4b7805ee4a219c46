"""Sample4Geo's similarity neighbours: the mining function and the sampler that packs them."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.data.samplers import SimilarityNeighbourBatchSampler, similarity_neighbours


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(query, reference, k, groups=None, query_valid=None, reference_valid=None) -> np.ndarray:
    """The whole N x N similarity matrix, ranked row by row in plain Python."""
    n = query.shape[0]
    sim = query.astype(np.float64) @ reference.astype(np.float64).T
    out = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        if query_valid is not None and not query_valid[i]:
            continue
        candidates = [
            j
            for j in range(n)
            if j != i
            and (groups is None or groups[j] != groups[i])
            and (reference_valid is None or reference_valid[j])
        ]
        ranked = sorted(candidates, key=lambda j: -sim[i, j])[:k]
        out[i, : len(ranked)] = ranked
    return out


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_similarity_neighbours_match_brute_force(chunk):
    rng = np.random.default_rng(0)
    query, reference = _unit(rng.normal(size=(53, 16))), _unit(rng.normal(size=(53, 16)))
    got = similarity_neighbours(query, reference, k=5, chunk=chunk)
    assert got.shape == (53, 5)
    np.testing.assert_array_equal(got, _brute_force(query, reference, 5))
    assert not np.any(got == np.arange(53)[:, None])  # never itself


def test_similarity_neighbours_rank_by_query_to_reference_not_symmetric():
    # reference 2 is query 0's best match although reference 0 (itself) is closer still
    query = _unit(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
    reference = _unit(np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 0.1]]))
    got = similarity_neighbours(query, reference, k=2)
    assert got[0].tolist() == [2, 1]  # cos 0.995 then 0.0; itself (cos 1) excluded
    assert got[1].tolist() == [2, 0]  # query 1 points up: reference 2 (0.0995) before reference 0 (0.0)


def test_similarity_neighbours_skip_same_place_and_missing_views():
    rng = np.random.default_rng(1)
    query, reference = _unit(rng.normal(size=(30, 8))), _unit(rng.normal(size=(30, 8)))
    groups = [f"place{i // 3}" for i in range(30)]  # three items per place
    query_valid = np.ones(30, dtype=bool)
    query_valid[4] = False
    reference_valid = np.ones(30, dtype=bool)
    reference_valid[[7, 11]] = False
    got = similarity_neighbours(
        query,
        reference,
        k=6,
        groups=groups,
        query_valid=query_valid,
        reference_valid=reference_valid,
        chunk=8,
    )
    np.testing.assert_array_equal(
        got, _brute_force(query, reference, 6, groups, query_valid, reference_valid)
    )
    assert (got[4] == -1).all()
    for i, row in enumerate(got):
        assert all(groups[j] != groups[i] for j in row if j >= 0)
    # more neighbours asked than exist: the row is padded with -1
    padded = similarity_neighbours(query[:4], reference[:4], k=6)
    assert (padded[:, :3] >= 0).all() and (padded[:, 3:] == -1).all()


def _clustered_table(n_clusters: int, size: int, pool: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mined neighbours of embeddings forming tight, well separated clusters, and each item's cluster."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n_clusters, 32)))
    points = np.repeat(centres, size, axis=0) + rng.normal(scale=0.01, size=(n_clusters * size, 32))
    order = rng.permutation(n_clusters * size)  # clusters are not contiguous in index order
    points = points[order]
    table = similarity_neighbours(
        _unit(points), _unit(points + rng.normal(scale=0.01, size=points.shape)), k=pool
    )
    return table, order // size


def test_sampler_packs_mined_neighbours_into_the_anchor_batch():
    table, cluster = _clustered_table(n_clusters=5, size=4, pool=3)
    sampler = SimilarityNeighbourBatchSampler([f"loc{i}" for i in range(20)], 4, sim_neighbours=3, seed=3)
    before = sampler.global_batches(0)
    assert any(len({cluster[i] for i in b}) > 1 for b in before)  # no table yet: random batches
    sampler.set_similarity_neighbours(table)
    for epoch in range(4):
        batches = sampler.global_batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(20))  # every location once
        for batch in batches:
            assert len({cluster[i] for i in batch}) == 1, "an anchor's neighbours left its batch"


def test_sampler_invariants_hold_with_a_random_table_and_repeated_places():
    rng = np.random.default_rng(4)
    keys = [f"p{i // 2}" for i in range(40)] + [f"q{i}" for i in range(24)]  # some places twice
    n = len(keys)
    table = similarity_neighbours(
        _unit(rng.normal(size=(n, 8))), _unit(rng.normal(size=(n, 8))), k=10, groups=keys
    )
    sampler = SimilarityNeighbourBatchSampler(keys, 8, sim_neighbours=4, seed=9, drop_last=False)
    sampler.set_similarity_neighbours(table)
    for epoch in range(3):
        batches = sampler.global_batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(n))
        for batch in batches:
            assert len({keys[i] for i in batch}) == len(batch)
        # each batch opens with an anchor, and its neighbours follow: the second item is in the
        # anchor's pool unless every pooled neighbour was used already (the last batch is the
        # tail of items that could not join earlier batches, without neighbours)
        for batch in batches[:-1]:
            if len(batch) > 1:
                assert batch[1] in set(table[batch[0]].tolist()) or _all_used_before(batches, batch, table)
    # deterministic in (seed, epoch, table), and resumable mid-epoch
    again = SimilarityNeighbourBatchSampler(keys, 8, sim_neighbours=4, seed=9, drop_last=False)
    again.set_similarity_neighbours(table.copy())
    assert again.global_batches(2) == sampler.global_batches(2)
    sampler.set_epoch(2)
    first = next(iter(sampler))
    again.set_epoch(2)
    again.load_state_dict(sampler.state_dict())
    assert list(again) == sampler.global_batches(2)[1:] and first == sampler.global_batches(2)[0]


def _all_used_before(batches: list[list[int]], batch: list[int], table: np.ndarray) -> bool:
    seen = {i for b in batches[: batches.index(batch)] for i in b}
    return all(j in seen or j < 0 for j in table[batch[0]])


def test_sampler_falls_back_to_gps_neighbours_without_a_table():
    from geobridge.geo import offset_latlon

    points = [offset_latlon(60.0, 24.0, float(e), 0.0) for e in (0, 10, 20, 30, 5000, 5010, 5020, 5030)]
    lat, lon = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    sampler = SimilarityNeighbourBatchSampler(
        [str(i) for i in range(8)], 4, sim_neighbours=3, seed=2, lat=lat, lon=lon, neighbours=3, near=3
    )
    assert all(sorted(b) in ([0, 1, 2, 3], [4, 5, 6, 7]) for b in sampler.global_batches(0))
    # a table that pairs the two sites' items the other way round takes over
    table = np.array([[4, 5, 6], [5, 6, 7], [6, 7, 4], [7, 4, 5], [0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]])
    sampler.set_similarity_neighbours(table)
    for batch in sampler.global_batches(0):
        assert len({i < 4 for i in batch}) == 2  # both sites in every batch now
    with pytest.raises(ValueError, match="similarity table"):
        sampler.set_similarity_neighbours(np.zeros((3, 2), dtype=np.int64))
