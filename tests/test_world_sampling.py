"""Sampling locations on roads: on a street, inside the margin, spread out, split by region."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.world.model import LandCover, RoadClass
from geobridge.world.sampling import NotEnoughRoadPoints, SplitFractions, sample_locations
from geobridge.world.sources_procedural import generate_procedural_world


@pytest.fixture(scope="module")
def small_city():
    return generate_procedural_world(8, size_m=500, regions=3)


def test_locations_stand_on_streets_inside_the_margin_and_apart(small_city):
    locs = sample_locations(small_city, 40, np.random.default_rng(0), margin_m=80, min_spacing_m=20)
    assert len(locs) == 40
    rows = np.array([s.row for s in locs])
    cols = np.array([s.col for s in locs])
    r, c = rows.astype(int), cols.astype(int)
    assert np.isin(small_city.landcover[r, c], (LandCover.ROAD, LandCover.BRIDGE)).all()
    assert ((small_city.road_class[r, c] >= RoadClass.MAJOR) & (small_city.road_class[r, c] <= RoadClass.RESIDENTIAL)).all()
    assert rows.min() >= 80 and cols.min() >= 80 and rows.max() <= 420 and cols.max() <= 420
    d = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    assert d[~np.eye(40, dtype=bool)].min() >= 20
    lat, lon = small_city.georef.cell_to_latlon(rows, cols)
    np.testing.assert_allclose(lat, [s.lat for s in locs])
    np.testing.assert_allclose(lon, [s.lon for s in locs])
    assert [s.region for s in locs] == [small_city.region_at(s.row, s.col) for s in locs]


def test_test_split_is_one_held_out_region(small_city):
    locs = sample_locations(small_city, 40, np.random.default_rng(1), fractions=SplitFractions(val=0.1, test=0.25))
    splits = [s.split for s in locs]
    assert splits.count("test") == 10 and splits.count("val") == 4 and splits.count("train") == 26
    test_regions = {s.region for s in locs if s.split == "test"}
    assert len(test_regions) == 1
    assert test_regions.isdisjoint({s.region for s in locs if s.split != "test"})
    again = sample_locations(small_city, 40, np.random.default_rng(1), fractions=SplitFractions(val=0.1, test=0.25))
    assert again == locs


def test_single_region_world_still_gets_all_splits():
    city = generate_procedural_world(2, size_m=400, regions=1)
    locs = sample_locations(city, 20, np.random.default_rng(0), margin_m=60)
    assert {s.split for s in locs} == {"train", "val", "test"}


def test_too_many_locations_is_a_clear_error(small_city):
    with pytest.raises(NotEnoughRoadPoints, match="asked for 3000 locations"):
        sample_locations(small_city, 3000, np.random.default_rng(0))
    with pytest.raises(NotEnoughRoadPoints, match="no road"):
        sample_locations(small_city, 5, np.random.default_rng(0), margin_m=400)
