"""Imagery age: ``age_world`` changes about ``fraction`` of the buildings, in the documented ways,
deterministically, and never touches its input."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.world.aging import age_world, age_world_with_report
from geobridge.world.model import GeoReference, LandCover, RoadClass, World

N = 200


def city(n_side: int = 10) -> World:
    """A 200 m world: ``n_side`` x ``n_side`` buildings (12 m x 12 m, 20 m apart) along a road grid
    with open grass between them."""
    landcover = np.full((N, N), LandCover.GRASS, np.uint8)
    height = np.zeros((N, N), np.float32)
    colour = np.zeros((N, N, 3), np.uint8)
    colour[:] = (110, 150, 80)
    building_id = np.zeros((N, N), np.int32)
    road_class = np.zeros((N, N), np.uint8)
    for k in range(0, N, 40):
        road_class[k : k + 4, :] = RoadClass.RESIDENTIAL
        road_class[:, k : k + 4] = RoadClass.RESIDENTIAL
    landcover[road_class > 0] = LandCover.ROAD
    colour[road_class > 0] = (95, 95, 100)
    rng = np.random.default_rng(0)
    next_id = 1
    for i in range(n_side):
        for j in range(n_side):
            r0, c0 = 6 + 19 * i, 6 + 19 * j
            box = (slice(r0, r0 + 12), slice(c0, c0 + 12))
            if (road_class[box] > 0).any():
                continue
            landcover[box] = LandCover.BUILDING
            building_id[box] = next_id
            height[box] = float(rng.uniform(8, 30))
            colour[box] = (150, 70, 60)
            next_id += 1
    return World(
        landcover,
        height,
        colour,
        building_id,
        road_class,
        np.zeros((N, N), np.uint8),
        ["r"],
        [],
        GeoReference(47.0, 8.0, 1.0),
        "city",
    )


def changed_buildings(before: World, after: World) -> set[int]:
    """Ids of input buildings whose footprint, height or roof colour differ in ``after``."""
    changed = set()
    for bid in np.unique(before.building_id[before.building_id > 0]):
        mask = before.building_id == bid
        if (
            np.any(after.building_id[mask] != bid)
            or np.any(after.height[mask] != before.height[mask])
            or np.any(after.colour[mask] != before.colour[mask])
        ):
            changed.add(int(bid))
    return changed


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6])
def test_about_fraction_of_buildings_change(fraction):
    world = city()
    n_buildings = len(np.unique(world.building_id)) - 1
    aged = age_world(world, fraction, np.random.default_rng(1))
    assert len(changed_buildings(world, aged)) == pytest.approx(fraction * n_buildings, abs=1)


def test_input_is_not_modified_and_result_is_deterministic():
    world = city()
    snapshot = {
        k: getattr(world, k).copy() for k in ("landcover", "height", "colour", "building_id", "road_class")
    }
    a = age_world(world, 0.4, np.random.default_rng(5))
    b = age_world(world, 0.4, np.random.default_rng(5))
    c = age_world(world, 0.4, np.random.default_rng(6))
    for key, value in snapshot.items():
        np.testing.assert_array_equal(getattr(world, key), value)
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert changed_buildings(world, a) != changed_buildings(world, c)


def test_changes_are_the_documented_kinds():
    world = city()
    aged, report = age_world_with_report(world, 0.5, np.random.default_rng(2))
    for bid in report.removed:
        mask = world.building_id == bid
        assert np.all(aged.building_id[mask] == 0) and np.all(aged.height[mask] == 0)
        assert np.all(np.isin(aged.landcover[mask], [LandCover.GRASS, LandCover.PAVED]))
    for bid in report.reroofed:
        mask = world.building_id == bid
        assert np.all(aged.height[mask] == world.height[mask])
        assert np.all(np.any(aged.colour[mask] != world.colour[mask], axis=-1))
    for bid in report.reheighted:
        mask = world.building_id == bid
        ratio = aged.height[mask] / world.height[mask]
        assert np.all(((ratio > 0.45) & (ratio < 0.85)) | ((ratio > 1.25) & (ratio < 2.05)))
    assert len(report.removed) and len(report.reroofed) and len(report.reheighted)
    # New buildings stand on what was open ground, off the roads.
    assert len(report.added) > 0
    new_cells = np.isin(aged.building_id, report.added)
    assert np.all(world.landcover[new_cells] == LandCover.GRASS)
    assert np.all(world.road_class[new_cells] == 0)
    assert np.all(aged.landcover[new_cells] == LandCover.BUILDING) and np.all(aged.height[new_cells] > 0)


def test_zero_fraction_changes_nothing_and_bad_fraction_is_rejected():
    world = city()
    aged = age_world(world, 0.0, np.random.default_rng(0))
    for key in ("landcover", "height", "colour", "building_id"):
        np.testing.assert_array_equal(getattr(aged, key), getattr(world, key))
    with pytest.raises(ValueError, match="fraction"):
        age_world(world, 1.5, np.random.default_rng(0))
