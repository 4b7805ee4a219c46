"""Protocols on hand-built cases with known answers, a property test of the full u1652 and
pairs metrics against naive re-implementations, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import EvaluationError, evaluate, list_protocols
from geobridge.geo import EARTH_RADIUS_M, metres_per_degree, offset_latlon


def at_angles(degrees) -> np.ndarray:
    """Unit 2-D vectors; the cosine between two is the cosine of their angle difference."""
    rad = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def emb(degrees, ids, **kw) -> Embeddings:
    return Embeddings(at_angles(degrees), np.array(ids, dtype=str), **kw)


def test_every_protocol_is_registered_and_named_in_its_result():
    query, gallery = emb([0], ["a"]), emb([0, 50], ["a", "b"])
    assert list_protocols() == ["u1652", "u1652-s4g", "pairs", "vigor", "geobridge", "geotext"]
    for name in list_protocols():
        result = evaluate(query, gallery, name)
        assert result.protocol == name and result.to_dict()["protocol"] == name
        assert result.metrics["R@1"] == 100.0


def test_distractors_compete_in_u1652_but_are_junk_in_u1652_s4g():
    # query "A" at 0 deg; a distractor building "X" (no query has it) at 10 deg beats A at 20 deg
    query = emb([0, 90], ["A", "B"])
    gallery = emb([10, 20, 95], ["X", "A", "B"])
    layumi = evaluate(query, gallery, "u1652")
    s4g = evaluate(query, gallery, "u1652-s4g")
    assert layumi.per_query["rank"].tolist() == [1, 0]
    assert layumi.metrics["R@1"] == 50.0 and layumi.metrics["AP"] == pytest.approx(100 * (0.25 + 1) / 2)
    assert s4g.per_query["rank"].tolist() == [0, 0]
    assert s4g.metrics["R@1"] == 100.0 and s4g.metrics["AP"] == 100.0
    assert any("1 gallery items whose label no query has" in n for n in s4g.notes)


def test_u1652_junk_multiple_positives_and_no_positive():
    # order by score for the query at 0 deg: junk(-1) 1, A 2, B 3, A 4, C 5, A 6
    query = emb([0, 200], ["A", "Z"])  # "Z" has no good item in the gallery
    gallery = emb([1, 2, 3, 4, 5, 6], ["-1", "A", "B", "A", "C", "A"])
    result = evaluate(query, gallery, "u1652")
    # junk removed: A at 0, B 1, A 2, C 3, A 4 -> goods at ranks 0, 2, 4
    ap_a = (1 + (1 / 2 + 2 / 3) / 2 + (2 / 4 + 3 / 5) / 2) / 3
    assert result.per_query["rank"].tolist() == [0, -1]
    np.testing.assert_allclose(result.per_query["ap"], [ap_a, 0.0])
    assert result.metrics["AP"] == pytest.approx(100 * ap_a / 2)  # Z counts in the denominator
    assert result.metrics["R@1"] == 50.0
    assert any("1 of 2 queries have no positive" in n for n in result.notes)
    assert any("labelled '-1'" in n for n in result.notes)
    # R@1% = CMC[round(0.01 * 6)] = CMC[0]
    assert result.metrics["R@1%"] == 50.0


def test_pairs_ranks_count_strictly_greater_scores_and_use_n_over_100():
    # 150 gallery items; query 0's true match ties with item "t0" and is beaten by one item
    angles = np.linspace(100, 350, 150)
    angles[:3] = [0.0, 0.0, -0.5]  # g0 (true match of q0), t0 (tie), g2 (closer to q1 at -1 deg)
    ids = [f"g{i}" for i in range(150)]
    ids[1] = "t0"
    query = emb([0, -1], ["g0", "g2"])
    gallery = emb(angles, ids)
    result = evaluate(query, gallery, "pairs")
    assert result.per_query["rank"].tolist() == [0, 0]  # the tie goes to the true match
    query2 = emb([-0.4], ["g0"])  # g2 at -0.5 is now strictly closer than g0 (and t0) at 0
    assert evaluate(query2, gallery, "pairs").per_query["rank"].tolist() == [1]
    # Sample4Geo's R@1% cut-off 150 // 100 = 1 -> rank must be 0; geobridge's is max(1, 1) = 1
    assert evaluate(query2, gallery, "pairs").metrics["R@1%"] == 0.0
    assert "AP" not in result.metrics


def test_vigor_semi_positives_hit_rate_and_metres():
    lat0, lon0 = 41.88, -87.63
    positions = [offset_latlon(lat0, lon0, east, 0.0) for east in (0.0, 30.0, 60.0, 500.0, 0.0)]
    lat, lon = np.array([p[0] for p in positions]), np.array([p[1] for p in positions])
    gallery = emb([30, 10, 20, 40, 5], ["pos", "semi1", "semi2", "far", "other"], lat=lat, lon=lon)
    # query 0 at 0 deg: other(5) > semi1(10) > semi2(20) > pos(30): rank 3, a non-semi above -> miss
    # query 1 at 22 deg: semi2 (2 deg away) above pos (8 deg): rank 1, a semi-positive -> hit
    query = emb([0, 22], ["pos", "pos"], lat=np.array([lat0, lat0]), lon=np.array([lon0, lon0]))
    semis = {"pos": ["semi1", "semi2"]}
    result = evaluate(query, gallery, "vigor", semi_positives=[semis["pos"], semis["pos"]])
    assert result.per_query["rank"].tolist() == [3, 1]
    assert result.per_query["semi_positives_above"].tolist() == [2, 1]
    assert result.metrics["hit_rate"] == 50.0
    assert result.metrics["R@1"] == 0.0
    # top-1 is "other" (0 m away) for query 0 and "semi2" (60 m east on WGS84) for query 1; the
    # protocol's metres are spherical (R = 6371 km): 0.26 % shorter along the parallel at 41.88 deg
    sphere = EARTH_RADIUS_M * np.pi / 180 * np.cos(np.radians(lat0)) / metres_per_degree(lat0)[1]
    np.testing.assert_allclose(result.per_query["error_m"], [0.0, 60.0 * sphere], atol=1e-6)
    assert result.metrics["median_error_m"] == pytest.approx(30.0 * sphere, abs=1e-6)
    assert result.metrics["acc@25m"] == 50.0
    # a mapping keyed by query id gives the same
    assert evaluate(query, gallery, "vigor", semi_positives=semis).metrics["hit_rate"] == 50.0
    with pytest.raises(EvaluationError, match="not in the gallery"):
        evaluate(query, gallery, "vigor", semi_positives={"pos": ["nope"]})


def test_geobridge_reciprocal_rank_r_at_one_percent_and_l_at():
    angles = np.concatenate([[0.0, 3.0, 1.0], np.linspace(100, 350, 147)])  # N = 150
    ids = ["a.png", "b.png", "c.png"] + [f"x{i}.png" for i in range(147)]
    lat0, lon0 = 30.0, 114.0
    north = np.concatenate([[0.0, 120.0, 40.0], np.full(147, 5000.0)])
    lat = np.array([offset_latlon(lat0, lon0, 0.0, n)[0] for n in north])
    lon = np.full(150, lon0)
    gallery = emb(angles, ids, lat=lat, lon=lon)
    # query a at 0 deg -> a first (RR 1); query b at 2 deg -> c (1 deg away) then b: rank 1 (RR 1/2)
    query = emb([0, 2], ["a", "b"], lat=lat[:2], lon=lon[:2])
    result = evaluate(query, gallery, "geobridge", match_by="stem")
    assert result.per_query["rank"].tolist() == [0, 1]
    assert result.metrics["AP"] == pytest.approx(75.0)  # mean reciprocal rank
    assert result.metrics["R@1%"] == 50.0  # top max(1, int(1.5)) = 1
    # query b's top-1 is c: 80 m from b's true position
    assert (result.metrics["L@50"], result.metrics["L@100"], result.metrics["L@150"]) == (50.0, 100.0, 100.0)
    # 40 m north on WGS84 is 40.12 m on the metric's sphere (R = 6371 km) at 30 degrees
    sphere = EARTH_RADIUS_M * np.pi / 180 / metres_per_degree(lat0)[0]
    assert result.metrics["mean_error_km"] == pytest.approx(0.040 * sphere, rel=1e-5)
    with pytest.raises(EvaluationError, match="no positive|unique"):
        evaluate(query, emb([0, 1], ["a.png", "a.jpg"]), "geobridge", match_by="stem")


# ---------------------------------------------------------------------------------------------
# property test: the protocols' metrics against the reference scripts written naively


def naive_u1652_metrics(qf, ql, gf, gl, distractors_junk):
    gl = np.array(gl, dtype=object)
    if distractors_junk:
        gl = np.where(np.isin(gl, ql), gl, "-1")
    cmc = np.zeros(len(gl))
    ap = 0.0
    for i in range(len(ql)):
        score = gf @ qf[i]
        index = np.argsort(score, kind="stable")[::-1]
        good, junk = np.argwhere(gl == ql[i]).flatten(), np.argwhere(gl == "-1").flatten()
        if good.size == 0:
            continue
        index = index[~np.isin(index, junk)]
        rows_good = np.flatnonzero(np.isin(index, good))
        if rows_good.size == 0:
            continue
        cmc[rows_good[0] :] += 1
        for j, r in enumerate(rows_good):
            old = 1.0 if r == 0 else j / r
            ap += (1.0 / len(rows_good)) * (old + (j + 1) / (r + 1)) / 2
    cmc = cmc / len(ql)
    at = lambda k: 100 * cmc[min(k, len(cmc) - 1)]  # noqa: E731
    return {
        "R@1": at(0),
        "R@5": at(4),
        "R@10": at(9),
        "R@1%": at(round(len(gl) * 0.01)),
        "AP": 100 * ap / len(ql),
    }


@st.composite
def u1652_sets(draw):
    dim, n_q, n_g = draw(st.integers(4, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 14))

    def vectors(n):
        out = np.zeros((n, dim), np.float32)
        for r in range(n):
            out[r, draw(st.permutations(range(dim)))[:4]] = draw(
                st.lists(st.sampled_from([-0.5, 0.5]), min_size=4, max_size=4)
            )
        return out

    labels = st.sampled_from(["-1", "a", "b", "c", "d"])
    ql = draw(st.lists(labels.filter(lambda s: s != "-1"), min_size=n_q, max_size=n_q))
    gl = draw(st.lists(labels, min_size=n_g, max_size=n_g))
    return vectors(n_q), ql, vectors(n_g), gl


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(u1652_sets(), st.booleans())
def test_u1652_protocols_match_the_naive_script(data, distractors_junk):
    qf, ql, gf, gl = data
    if distractors_junk and all(g not in ql for g in gl):
        return  # everything junk: an error, tested below
    if not distractors_junk and all(g == "-1" for g in gl):
        return
    name = "u1652-s4g" if distractors_junk else "u1652"
    result = evaluate(Embeddings(qf, np.array(ql)), Embeddings(gf, np.array(gl)), name, chunk_size=2)
    expected = naive_u1652_metrics(qf, ql, gf, gl, distractors_junk)
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-9), key


def test_all_junk_gallery_is_an_error():
    with pytest.raises(EvaluationError, match="every gallery item is junk"):
        evaluate(emb([0], ["a"]), emb([0], ["b"]), "u1652-s4g")


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_input_gives_clear_errors():
    good = emb([0, 10], ["a", "b"])
    with pytest.raises(EvaluationError, match="dimension 3 but gallery vectors 2"):
        evaluate(Embeddings(np.ones((1, 3), np.float32), np.array(["a"])), good, "pairs")
    nan = at_angles([0, 5])
    nan[1, 0] = np.nan
    with pytest.raises(EvaluationError, match="NaN.*row 1, id 'b'"):
        evaluate(good, Embeddings(nan, np.array(["a", "b"])), "pairs")
    with pytest.raises(EvaluationError, match="unique gallery ids.*'a'"):
        evaluate(good, emb([0, 1, 2], ["a", "a", "b"]), "pairs")
    with pytest.raises(EvaluationError, match="empty"):
        evaluate(Embeddings(np.zeros((0, 2), np.float32), np.array([], dtype=str)), good, "u1652")
    with pytest.raises(EvaluationError, match="all zeros"):
        evaluate(Embeddings(np.zeros((1, 2), np.float32), np.array(["a"])), good, "u1652")
    with pytest.raises(EvaluationError, match="unknown protocol 'cvusa'; choose one of: u1652"):
        evaluate(good, good, "cvusa")
    with pytest.raises(EvaluationError, match="does not take option.*semi_positives"):
        evaluate(good, good, "pairs", semi_positives=[["a"], ["b"]])


def test_query_without_match_is_a_reported_miss_and_unnormalised_vectors_are_normalised():
    query = Embeddings(3.0 * at_angles([0, 90]), np.array(["a", "missing"]))
    result = evaluate(query, emb([0, 10], ["a", "b"]), "pairs")
    assert result.per_query["rank"].tolist() == [0, -1]
    assert result.metrics["R@1"] == 50.0 and result.metrics["R@10"] == 50.0
    assert any("1 of 2 queries have no positive" in n for n in result.notes)
    assert any("2 of 2 query vectors were not unit length" in n for n in result.notes)
    assert not any("gallery vectors were not unit" in n for n in result.notes)
    assert math.isclose(evaluate(emb([0], ["a"]), emb([0], ["a"]), "geobridge").metrics["AP"], 100.0)


def test_good_items_follow_each_protocols_matching_rule():
    from geobridge.evaluation.protocols import good_items

    query = emb([0, 90, 180], ["a", "b", "z"])
    gallery = emb([0, 10, 90, 200], ["a", "a", "b", "-1"])
    by_label = evaluate(query, gallery, "u1652")
    # every item with the query's label; junk never; a query without a gallery label has none
    assert good_items(by_label, ["a", "b", "z"], ["a", "a", "b", "-1"]) == [{0, 1}, {2}, set()]
    pairs = evaluate(emb([0, 90], ["p", "q"]), emb([90, 0, 45], ["q", "p", "r"]), "pairs")
    assert good_items(pairs, ["p", "q"], ["q", "p", "r"]) == [{1}, {0}]  # one positive each
