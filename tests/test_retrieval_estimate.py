"""The location estimate: weights, the position on the sphere, the conformal radius, and its calibration
stored in a gallery, on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geobridge.geo import haversine_m
from geobridge.retrieval.calibration import (
    CALIBRATION_FILE,
    Calibration,
    calibrate_gallery,
    held_out_split,
    view_calibration,
)
from geobridge.retrieval.estimate import (
    conformal_radius,
    covered_fraction,
    estimate_position,
    softmax_weights,
    weighted_position,
    weighted_spread_m,
)


def test_softmax_weights_by_hand():
    # scores 0.9 and 0.8 at temperature 0.1: weights e^0 : e^-1 = 1 : 0.3679 -> 0.7311, 0.2689
    assert softmax_weights([0.9, 0.8], 0.1) == pytest.approx([1 / (1 + math.e**-1), 1 / (1 + math.e)])
    assert softmax_weights([0.5, 0.5, 0.5], 0.05) == pytest.approx([1 / 3] * 3)
    assert softmax_weights([1000.0, 0.0], 0.01) == pytest.approx([1.0, 0.0])  # no overflow
    with pytest.raises(ValueError):
        softmax_weights([0.1], 0.0)


def test_weighted_position_on_the_sphere():
    # Two points on the equator, equal weights: the midpoint.
    assert weighted_position([0.0, 0.0], [10.0, 20.0], [0.5, 0.5]) == pytest.approx((0.0, 15.0))
    # Across the antimeridian the mean is at 180, not at 0 as a plain average of longitudes gives.
    lat, lon = weighted_position([0.0, 0.0], [179.0, -179.0], [0.5, 0.5])
    assert lat == pytest.approx(0.0, abs=1e-9) and abs(lon) == pytest.approx(180.0)
    # All weight on one point: that point.
    assert weighted_position([45.0, 10.0], [7.0, 8.0], [1.0, 0.0]) == pytest.approx((45.0, 7.0))
    # Three quarters on (0, 0), a quarter on (0, 90): the unit-vector mean (0.75, 0.25, 0) points to
    # atan(0.25 / 0.75) = 18.435 degrees east.
    assert weighted_position([0.0, 0.0], [0.0, 90.0], [0.75, 0.25]) == pytest.approx((0.0, 18.434948822922))


def test_weighted_spread_by_hand():
    # Two points 1 km north and south of the centre, equal weights: RMS distance 1 km.
    dlat = 1000.0 / (math.pi * 6_371_000.0 / 180.0)
    spread = weighted_spread_m([dlat, -dlat], [0.0, 0.0], [0.5, 0.5], (0.0, 0.0))
    assert spread == pytest.approx(1000.0, rel=1e-6)


def test_conformal_radius_is_the_finite_sample_quantile():
    errors = [10.0, 50.0, 20.0, 40.0, 30.0, 60.0, 70.0, 80.0, 90.0]  # n = 9
    # ceil((9 + 1) * 0.8) = 8th smallest = 80
    assert conformal_radius(errors, 0.8) == 80.0
    # ceil(10 * 0.5) = 5th smallest = 50
    assert conformal_radius(errors, 0.5) == 50.0
    # too few for 0.95 (rank 10 > 9): the largest
    assert conformal_radius(errors, 0.95) == 90.0
    assert covered_fraction(errors, 80.0) == pytest.approx(8 / 9)
    with pytest.raises(ValueError):
        conformal_radius(errors, 1.0)


def test_estimate_position_calibrated_uncalibrated_and_its_error():
    lat, lon, scores = [0.0, 0.0], [10.0, 20.0], [0.7, 0.7]
    uncalibrated = estimate_position(lat, lon, scores)
    assert (uncalibrated.lat, uncalibrated.lon) == pytest.approx((0.0, 15.0))
    # spread: both points 5 degrees of longitude on the equator from the centre
    assert uncalibrated.radius_m == pytest.approx(haversine_m(0, 15, 0, 20), rel=1e-9)
    assert uncalibrated.coverage is None and uncalibrated.error_m is None
    calibrated = estimate_position(lat, lon, scores, radius_m=123.0, coverage=0.8, truth=(0.0, 15.0))
    assert calibrated.radius_m == 123.0 and calibrated.coverage == 0.8
    assert calibrated.error_m == pytest.approx(0.0, abs=1e-6)
    assert set(calibrated.to_dict()) == {"lat", "lon", "radius_m", "coverage", "error_m"}
    assert set(uncalibrated.to_dict()) == {"lat", "lon", "radius_m", "coverage"}


def test_view_calibration_and_its_two_fold_check():
    errors = np.arange(1.0, 11.0) * 100  # 100 .. 1000 m, n = 10
    cal = view_calibration("drone", errors, 0.8, "test")
    assert cal.radius_m == 900.0  # ceil(11 * 0.8) = 9th smallest
    assert cal.median_error_m == 550.0 and cal.queries == 10
    # halves [100, 300, 500, 700, 900] and [200, 400, ..., 1000]: each radius is its half's largest
    # (ceil(6 * 0.8) = 5 > 4.8): 900 covers 4 of the other half (8 / 10 in all), 1000 all 5
    assert cal.checked_coverage == pytest.approx((4 / 5 + 5 / 5) / 2)


def test_held_out_split_prefers_val():
    from geobridge.records import Location

    places = [Location("a", 0, 0, split="train"), Location("b", 0, 0, split="test")]
    assert held_out_split(places) == "test"
    assert held_out_split(places + [Location("c", 0, 0, split="val")]) == "val"
    assert held_out_split(places[:1]) is None


def test_gallery_calibration_is_stored_used_and_dropped_when_the_gallery_changes(tiny_world_dir, tmp_path):
    from geobridge.models import create_model
    from geobridge.records import read_manifest
    from geobridge.retrieval.gallery import Gallery

    torch.manual_seed(0)
    model = create_model("tiny")
    test = read_manifest(tiny_world_dir, split="test")
    gallery = Gallery.build(model, test, "satellite", out=tmp_path / "g", progress=False)
    assert (tmp_path / "g" / CALIBRATION_FILE).exists() is False
    plain = gallery.search(images=[test[0].path("drone")], view="drone", k=1)[0]
    assert len(plain.matches) == 1 and plain.estimate is not None and plain.estimate.coverage is None

    calibration = calibrate_gallery(gallery, test, ["drone"], coverage=0.8, split="test")
    assert calibration.gallery_size == len(test) and calibration.views["drone"].queries == len(test)
    gallery.set_calibration(calibration)
    reopened = Gallery.load(tmp_path / "g", model=model)
    assert reopened.calibration == calibration
    assert Calibration.from_json(calibration.to_json()) == calibration
    result = reopened.search(
        images=[test[0].path("drone")], view="drone", k=1, truth=[(test[0].lat, test[0].lon)]
    )[0]
    assert result.estimate.radius_m == calibration.views["drone"].radius_m and result.estimate.coverage == 0.8
    assert result.to_dict()["estimate"]["error_m"] >= 0
    # An uncalibrated view still gets an estimate, with the spread as its radius and no claimed rate.
    assert reopened.search(text="a park", k=2)[0].estimate.coverage is None

    others = [loc for loc in read_manifest(tiny_world_dir) if loc.split != "test"][:2]
    reopened.add(others, progress=False)
    assert Gallery.load(tmp_path / "g", model=model).calibration is None  # about the old contents
