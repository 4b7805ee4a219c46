"""The world model and the procedural source: geo-reference maths, region styles, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.geo import wgs84
from geobridge.world.model import GeoReference, LandCover, RoadClass, World
from geobridge.world.sources_procedural import generate_procedural_world


@pytest.fixture(scope="module")
def city() -> World:
    return generate_procedural_world(3, size_m=700, regions=4)


def test_georeference_round_trips_and_matches_metres():
    ref = GeoReference(origin_lat=60.17, origin_lon=24.94, cell_size_m=2.0)
    rows = np.array([0.0, 10.5, 400.0])
    cols = np.array([0.0, 3.25, 250.0])
    lat, lon = ref.cell_to_latlon(rows, cols)
    back_r, back_c = ref.latlon_to_cell(lat, lon)
    np.testing.assert_allclose(back_r, rows, atol=1e-6)
    np.testing.assert_allclose(back_c, cols, atol=1e-6)
    # rows grow southwards, cols eastwards, 2 m per cell on the ground (WGS84 geodesics)
    assert lat[1] < ref.origin_lat and lon[1] > ref.origin_lon
    assert wgs84().inv(lon[0], lat[0], lon[0], lat[2])[2] == pytest.approx(800.0, rel=1e-3)
    assert wgs84().inv(lon[0], lat[0], lon[2], lat[0])[2] == pytest.approx(500.0, rel=1e-3)
    east, north = ref.cell_to_xy(10.0, 5.0)
    assert (east, north) == (10.0, -20.0)
    assert ref.xy_to_cell(east, north) == (10.0, 5.0)


def test_world_rejects_misaligned_rasters():
    h, w = 4, 5
    with pytest.raises(ValueError, match="height"):
        World(
            landcover=np.zeros((h, w), np.uint8),
            height=np.zeros((h, w + 1), np.float32),
            colour=np.zeros((h, w, 3), np.uint8),
            building_id=np.zeros((h, w), np.int32),
            road_class=np.zeros((h, w), np.uint8),
            region=np.zeros((h, w), np.uint8),
            region_names=["a"],
            features=[],
            georef=GeoReference(0.0, 0.0),
            name="bad",
        )


def test_procedural_world_is_consistent(city: World):
    assert city.shape == (700, 700)
    assert city.size_m == (700.0, 700.0)
    assert (
        city.landcover.dtype == np.uint8
        and city.height.dtype == np.float32
        and city.building_id.dtype == np.int32
    )
    building = city.landcover == LandCover.BUILDING
    # building ids, heights and land cover agree cell by cell
    assert np.array_equal(building, city.building_id > 0)
    assert (city.height[building] > 0).all()
    assert (city.height[(city.landcover == LandCover.ROAD) | (city.landcover == LandCover.GRASS)] == 0).all()
    assert (city.road_class[city.landcover == LandCover.ROAD] > 0).all()
    # a river with bridges, and roads cross it only on bridges
    water = city.landcover == LandCover.WATER
    assert water.mean() > 0.02
    bridges = city.landcover == LandCover.BRIDGE
    assert bridges.any() and (city.height[bridges] > 0).all()
    assert (city.road_class[bridges] <= RoadClass.SECONDARY).all()
    kinds = {f.kind for f in city.features}
    assert {"river", "street", "bridge", "park"} <= kinds
    names = {f.name for f in city.features if f.kind != "river" and f.kind != "street"}
    assert len(names) == len([f for f in city.features if f.kind not in ("river", "street")])  # unique names


def test_regions_have_distinct_styles(city: World):
    assert len(city.region_names) == 4 and len(set(city.region_names)) == 4
    stats = {}
    for k, name in enumerate(city.region_names):
        inside = city.region == k
        b = (city.landcover == LandCover.BUILDING) & inside
        ids = np.unique(city.building_id[b])
        stats[name] = {
            "density": b.sum() / inside.sum(),
            "height": float(np.median(city.height[b])) if b.any() else 0.0,
            "roof": tuple(np.median(city.colour[b], axis=0).astype(int)) if b.any() else None,
            "n": len(ids),
        }
    heights = sorted(s["height"] for s in stats.values())
    densities = sorted(s["density"] for s in stats.values())
    assert heights[-1] > 1.5 * heights[0], stats
    assert densities[-1] > 1.5 * densities[0], stats
    assert len({s["roof"] for s in stats.values()}) == 4, stats


def test_same_seed_same_world_different_seed_different_world(city: World):
    again = generate_procedural_world(3, size_m=700, regions=4)
    for attr in ("landcover", "height", "colour", "building_id", "road_class", "region"):
        assert np.array_equal(getattr(city, attr), getattr(again, attr)), attr
    assert city.features == again.features
    other = generate_procedural_world(4, size_m=700, regions=4)
    assert (other.landcover != city.landcover).mean() > 0.2


def test_too_small_world_is_refused():
    with pytest.raises(ValueError, match="too small"):
        generate_procedural_world(0, size_m=50)
