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
    assert (
        (small_city.road_class[r, c] >= RoadClass.MAJOR)
        & (small_city.road_class[r, c] <= RoadClass.RESIDENTIAL)
    ).all()
    assert rows.min() >= 80 and cols.min() >= 80 and rows.max() <= 420 and cols.max() <= 420
    d = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    assert d[~np.eye(40, dtype=bool)].min() >= 20
    lat, lon = small_city.georef.cell_to_latlon(rows, cols)
    np.testing.assert_allclose(lat, [s.lat for s in locs])
    np.testing.assert_allclose(lon, [s.lon for s in locs])
    assert [s.region for s in locs] == [small_city.region_at(s.row, s.col) for s in locs]


def test_test_split_is_one_held_out_region(small_city):
    locs = sample_locations(
        small_city, 40, np.random.default_rng(1), fractions=SplitFractions(val=0.1, test=0.25)
    )
    splits = [s.split for s in locs]
    assert splits.count("test") == 10 and splits.count("val") == 4 and splits.count("train") == 26
    test_regions = {s.region for s in locs if s.split == "test"}
    assert len(test_regions) == 1
    assert test_regions.isdisjoint({s.region for s in locs if s.split != "test"})
    again = sample_locations(
        small_city, 40, np.random.default_rng(1), fractions=SplitFractions(val=0.1, test=0.25)
    )
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


def test_shared_style_policy_holds_out_a_new_area_of_a_style_seen_in_training(small_city):
    from geobridge.world.sampling import style_family

    assert style_family("suburb-2") == "suburb" and style_family("old-town") == "old-town"
    city = generate_procedural_world(3, size_m=600, regions=7)  # 5 styles: two of them repeat
    families = [style_family(n) for n in city.region_names]
    assert len(set(families)) < len(families)
    for seed in range(6):
        locs = sample_locations(
            city,
            30,
            np.random.default_rng(seed),
            margin_m=60,
            min_spacing_m=15,
            test_region_policy="shared-style",
        )
        test_regions = {s.region for s in locs if s.split == "test"}
        train_families = {style_family(s.region) for s in locs if s.split == "train"}
        assert len(test_regions) == 1
        (test_region,) = test_regions
        assert families.count(style_family(test_region)) > 1
        assert style_family(test_region) in train_families and test_region not in {
            s.region for s in locs if s.split != "test"
        }
    held_random = {
        s.region
        for seed in range(30)
        for s in sample_locations(city, 30, np.random.default_rng(seed), margin_m=60, min_spacing_m=15)
        if s.split == "test"
    }
    assert any(
        families.count(style_family(r)) == 1 for r in held_random
    )  # "random" may hold out a unique style
    # no style repeats: the policy falls back to the same draw as "random"
    a = sample_locations(
        small_city,
        20,
        np.random.default_rng(5),
        margin_m=80,
        min_spacing_m=20,
        test_region_policy="shared-style",
    )
    b = sample_locations(small_city, 20, np.random.default_rng(5), margin_m=80, min_spacing_m=20)
    assert a == b
    with pytest.raises(ValueError, match="test region policy"):
        sample_locations(small_city, 20, np.random.default_rng(5), test_region_policy="nearest")


def test_several_held_out_regions_mix_styles_that_all_remain_in_training():
    from geobridge.world.sampling import style_family

    city = generate_procedural_world(4, size_m=700, regions=10)  # 5 styles, each twice
    for seed in range(4):
        locs = sample_locations(
            city,
            60,
            np.random.default_rng(seed),
            margin_m=60,
            min_spacing_m=15,
            test_region_policy="shared-style",
            test_regions=3,
        )
        held = {s.region for s in locs if s.split == "test"}
        training = {s.region for s in locs if s.split != "test"}
        assert len(held) == 3 and not held & training
        assert len({style_family(r) for r in held}) == 3  # three different styles held out
        assert {style_family(r) for r in held} <= {style_family(r) for r in training}
    with pytest.raises(ValueError, match="cannot hold out 10 regions"):
        sample_locations(city, 60, np.random.default_rng(0), margin_m=60, min_spacing_m=15, test_regions=10)
