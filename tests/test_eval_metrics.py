"""Metric functions on hand-computed cases (docs/methods.md#protocols)."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.evaluation import metrics as M
from geobridge.geo import EARTH_RADIUS_M, metres_per_degree, offset_latlon


@pytest.mark.parametrize(
    ("n", "u1652", "sample4geo", "vigor", "geobridge"),
    [
        (951, 11, 9, 10, 9),  # University-1652 gallery: round(9.51) + 1, 951 // 100, int(9.51) + 1, 9
        (250, 3, 2, 3, 2),  # round(2.5) == 2 (Python rounds halves to even)
        (350, 5, 3, 4, 3),  # round(3.5) == 4
        (50, 1, 0, 1, 1),  # round(0.5) == 0; Sample4Geo's cut-off is 0: nobody hits
        (8884, 90, 88, 89, 88),  # CVUSA val
    ],
)
def test_one_percent_cutoffs_follow_each_script(n, u1652, sample4geo, vigor, geobridge):
    assert M.one_percent_cutoff(n, "u1652") == u1652
    assert M.one_percent_cutoff(n, "sample4geo") == sample4geo
    assert M.one_percent_cutoff(n, "vigor") == vigor
    assert M.one_percent_cutoff(n, "geobridge") == geobridge


def test_recall_counts_queries_without_match_as_misses():
    ranks = np.array([0, 3, -1, 12])
    assert M.recall_at_k(ranks, 1) == 0.25
    assert M.recall_at_k(ranks, 4) == 0.5
    assert M.recall_at_k(ranks, 13) == 0.75
    assert M.recall_at_one_percent(ranks, 951, "u1652") == 0.5  # top 11
    np.testing.assert_allclose(M.cmc_curve(ranks, 5), [0.25, 0.25, 0.25, 0.5, 0.5])


def test_trapezoidal_ap_hand_values():
    assert M.average_precision([0]) == 1.0
    # one good item at rank 1: p_prev = 0/1, p = 1/2 -> (0 + 0.5) / 2
    assert M.average_precision([1]) == 0.25
    # ranks 0, 2, 4: (1 + (1/2 + 2/3)/2 + (2/4 + 3/5)/2) / 3
    expected = (1 + (0.5 + 2 / 3) / 2 + (0.5 + 0.6) / 2) / 3
    assert M.average_precision([4, 0, 2]) == pytest.approx(expected)
    assert M.average_precision([]) == 0.0


def test_mean_ap_skips_queries_without_goods_but_keeps_them_in_the_denominator():
    ranks = np.array([0, 0, 2, 4, 1])  # query 0: [0]; query 1: none; query 2: [0, 2, 4]; query 3: [1]
    offsets = np.array([0, 1, 1, 4, 5])
    per_query = M.per_query_average_precision(ranks, offsets)
    np.testing.assert_allclose(per_query, [1.0, 0.0, M.average_precision([0, 2, 4]), 0.25])
    assert M.mean_average_precision(ranks, offsets) == pytest.approx(per_query.sum() / 4)


def test_reciprocal_rank_and_vigor_hit_rate():
    ranks = np.array([0, 1, 3, -1])
    np.testing.assert_allclose(M.reciprocal_ranks(ranks), [1.0, 0.5, 0.25, 0.0])
    assert M.mean_reciprocal_rank(ranks) == pytest.approx(1.75 / 4)
    # hits: rank 0; rank 2 with both items above being semi-positives. Misses: 2 with one; none.
    assert M.vigor_hit_rate(np.array([0, 2, 2, -1]), np.array([0, 2, 1, 0])) == 0.5


def test_distance_metrics_in_metres_and_geobridge_l_at():
    lat0, lon0 = 48.1, 11.5
    offsets_m = np.array([10.0, 60.0, 120.0, 200.0])
    lats, lons = zip(*(offset_latlon(lat0, lon0, east, 0.0) for east in offsets_m))
    errors = M.localisation_errors_m(np.array(lats), np.array(lons), np.full(4, lat0), np.full(4, lon0))
    # the offsets are WGS84 metres, the metric's spherical (R = 6371 km, as GeoBridge's code):
    # along a parallel they differ by the ratio of the two radii, 0.3 % at 48 degrees
    sphere = EARTH_RADIUS_M * np.pi / 180 * np.cos(np.radians(lat0)) / metres_per_degree(lat0)[1]
    np.testing.assert_allclose(errors, offsets_m * sphere, rtol=1e-6)
    assert M.accuracy_within(errors, 100.0) == 0.5
    assert M.median_error(errors) == pytest.approx(90.0 * sphere, rel=1e-6)
    scores = M.geobridge_localisation(errors)
    assert (scores["L@50"], scores["L@100"], scores["L@150"]) == (0.25, 0.5, 0.75)
    assert scores["mean_error_km"] == pytest.approx(0.0975 * sphere, rel=1e-6)
    # one degree of latitude with R = 6371 km
    assert M.localisation_errors_m(0.0, 0.0, 1.0, 0.0)[0] == pytest.approx(111_194.93, abs=0.01)


def test_bad_ranks_are_rejected():
    with pytest.raises(ValueError):
        M.recall_at_k(np.array([-2, 0]), 1)
    with pytest.raises(ValueError):
        M.recall_at_k(np.array([], dtype=int), 1)
