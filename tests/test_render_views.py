"""Renderers on small hand-built worlds: each test checks a geometric or colour property that a
wrong renderer would break (north-up crops, water colour, shadow direction, drone parallax,
panorama horizon and heading roll, map palette, determinism)."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.world.model import GeoReference, LandCover, NamedFeature, RoadClass, World
from geobridge.world.render import (
    MAP_PALETTE,
    DronePose,
    RenderSettings,
    render_drone,
    render_map,
    render_satellite,
    render_street,
)

N = 160
GRASS = (110, 150, 80)
ROAD = (95, 95, 100)
WATER = (40, 80, 170)
MAGENTA = (255, 0, 255)
TOWER_BOX = (slice(40, 56), slice(96, 112))  # north-east of the centre (80, 80)


def make_world(
    tower_height: float = 60.0, roads: bool = True, river: bool = True, tower_box=TOWER_BOX
) -> World:
    """A 160 m x 160 m world: crossing roads at the centre, a river in the west, a magenta-roofed
    tower north-east of the centre, a park with trees in the south-east."""
    landcover = np.full((N, N), LandCover.GRASS, np.uint8)
    height = np.zeros((N, N), np.float32)
    colour = np.zeros((N, N, 3), np.uint8)
    colour[:] = GRASS
    building_id = np.zeros((N, N), np.int32)
    road_class = np.zeros((N, N), np.uint8)
    if river:
        landcover[:, 8:21] = LandCover.WATER
        colour[:, 8:21] = WATER
    if roads:
        landcover[76:85, :] = LandCover.ROAD
        road_class[76:85, :] = RoadClass.MAJOR
        landcover[:, 76:85] = LandCover.ROAD
        road_class[:, 76:85] = RoadClass.RESIDENTIAL
        colour[76:85, :] = ROAD
        colour[:, 76:85] = ROAD
        if river:
            landcover[76:85, 8:21] = LandCover.BRIDGE
            height[76:85, 8:21] = 4.0
    landcover[110:140, 110:140] = LandCover.PARK
    colour[110:140, 110:140] = (90, 165, 75)
    for r, c in [(115, 115), (125, 130), (132, 114)]:
        landcover[r : r + 4, c : c + 4] = LandCover.TREE
        colour[r : r + 4, c : c + 4] = (40, 100, 45)
        height[r : r + 4, c : c + 4] = 10.0
    landcover[tower_box] = LandCover.BUILDING
    height[tower_box] = tower_height
    colour[tower_box] = MAGENTA
    building_id[tower_box] = 7
    return World(
        landcover=landcover,
        height=height,
        colour=colour,
        building_id=building_id,
        road_class=road_class,
        region=np.zeros((N, N), np.uint8),
        region_names=["test"],
        features=[NamedFeature("Test Tower", "tower", 48.0, 104.0, 10.0)],
        georef=GeoReference(60.0, 25.0, 1.0),
        name="hand-built",
    )


def latlon(world: World, row: float, col: float) -> tuple[float, float]:
    return world.georef.cell_to_latlon(row, col)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


def magenta(image: np.ndarray) -> np.ndarray:
    im = image.astype(int)
    return (im[..., 0] > 110) & (im[..., 2] > 110) & (im[..., 1] < 50)


def blue(image: np.ndarray) -> np.ndarray:
    im = image.astype(int)
    return (im[..., 2] > im[..., 0] + 50) & (im[..., 2] > im[..., 1] + 25)


# --- shapes, dtypes, determinism -----------------------------------------------------------


def test_output_shapes_and_dtypes(world):
    lat, lon = latlon(world, 80.5, 80.5)
    rng = np.random.default_rng(0)
    views = {
        "satellite": render_satellite(world, lat, lon, size_px=40, ground_m=100.0),
        "map": render_map(world, lat, lon, size_px=40, ground_m=100.0),
        "drone": render_drone(world, lat, lon, size_px=36, rng=rng),
        "street": render_street(world, lat, lon, height_px=24, rng=rng),
    }
    expected = {
        "satellite": (40, 40, 3),
        "map": (40, 40, 3),
        "drone": (36, 36, 3),
        "street": (24, 48, 3),
    }
    for name, image in views.items():
        assert image.shape == expected[name], name
        assert image.dtype == np.uint8, name
        assert image.std() > 5, f"{name} view is flat"


def test_same_seed_same_pixels_and_different_seed_different_pixels(world):
    lat, lon = latlon(world, 80.5, 80.5)
    noisy = RenderSettings(noise_std=6.0)

    def views(seed: int):
        rng = np.random.default_rng(seed)
        return [
            render_drone(world, lat, lon, 32, rng, settings=noisy),
            render_street(world, lat, lon, 16, rng, settings=noisy),
            render_satellite(world, lat, lon, 32, 100.0, settings=noisy, rng=rng),
        ]

    for a, b in zip(views(3), views(3)):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(views(3), views(4)))


def test_drone_pose_is_drawn_in_range_and_fixing_one_part_keeps_the_others():
    for seed in range(50):
        pose = DronePose.draw(np.random.default_rng(seed))
        assert (
            80.0 <= pose.altitude_m <= 180.0
            and 35.0 <= pose.pitch_deg <= 60.0
            and 0 <= pose.heading_deg < 360
        )
        fixed = DronePose.draw(np.random.default_rng(seed), heading_deg=10.0)
        assert (fixed.altitude_m, fixed.pitch_deg, fixed.heading_deg) == (
            pose.altitude_m,
            pose.pitch_deg,
            10.0,
        )
    with pytest.raises(ValueError, match="rng"):
        DronePose.draw(None, altitude_m=100.0)


def test_settings_reject_unknown_keys_and_bad_values():
    assert RenderSettings.from_dict({"season": "winter", "noise_std": 2.0}).season == "winter"
    with pytest.raises(ValueError, match="sun_azimuth"):
        RenderSettings.from_dict({"sun_azimut": 10.0})
    with pytest.raises(ValueError, match="season"):
        RenderSettings(season="monsoon")


# --- satellite -------------------------------------------------------------------------------


def test_satellite_is_north_up_and_shows_water_as_blue(world):
    lat, lon = latlon(world, 80.0, 80.0)
    image = render_satellite(world, lat, lon, size_px=80, ground_m=160.0)  # 2 m per pixel, whole world
    # The river (cols 8-20) is blue except under the bridge (rows 76-84); the grass is not.
    river = np.concatenate([image[:37, 5:9], image[43:, 5:9]])
    assert blue(river).all()
    assert not blue(image[39:41, 5:9]).any()
    assert blue(image[:, 25:35]).mean() < 0.05
    # The magenta roof (rows 40-56, cols 96-112) is north-east: image rows 20-28, cols 48-56.
    ys, xs = np.nonzero(magenta(image))
    assert 19 <= ys.min() and ys.max() <= 28 and 47 <= xs.min() and xs.max() <= 56
    assert len(ys) > 40


def test_satellite_crop_size_follows_ground_m(world):
    lat, lon = latlon(world, 80.0, 80.0)
    near = magenta(render_satellite(world, lat, lon, size_px=64, ground_m=120.0)).sum()
    far = magenta(render_satellite(world, lat, lon, size_px=64, ground_m=150.0)).sum()
    # A 16 m roof covers (16 / ground_m * 64)^2 pixels.
    assert near == pytest.approx((16 / 120 * 64) ** 2, rel=0.25)
    assert far == pytest.approx((16 / 150 * 64) ** 2, rel=0.25)


@pytest.mark.parametrize("sun_azimuth, dark_side", [(135.0, "north-west"), (315.0, "south-east")])
def test_shadows_fall_opposite_the_sun(sun_azimuth, dark_side):
    box = (slice(70, 90), slice(70, 90))
    lone = make_world(tower_height=30.0, roads=False, river=False, tower_box=box)
    lat, lon = latlon(lone, 80.0, 80.0)
    image = render_satellite(
        lone,
        lat,
        lon,
        100,
        100.0,
        RenderSettings(sun_azimuth_deg=sun_azimuth, sun_elevation_deg=45.0),
    )
    luminance = image.astype(float).mean(axis=2)
    # Tower covers image pixels 40-60; look at the grass just beyond each corner.
    north_west = luminance[20:38, 20:38].mean()
    south_east = luminance[62:80, 62:80].mean()
    dark, lit = (north_west, south_east) if dark_side == "north-west" else (south_east, north_west)
    assert dark < 0.8 * lit


def test_seasons_brightness_and_noise_change_the_satellite_view(world):
    lat, lon = latlon(world, 80.0, 80.0)
    summer = render_satellite(world, lat, lon, 48, 160.0).astype(float)
    winter = render_satellite(world, lat, lon, 48, 160.0, RenderSettings(season="winter")).astype(float)
    grass = np.s_[2:14, 14:30]  # grass between the river and the road
    assert winter[grass].mean() > summer[grass].mean() + 60  # snow
    dim = render_satellite(world, lat, lon, 48, 160.0, RenderSettings(brightness=0.5)).astype(float)
    assert dim.mean() == pytest.approx(0.5 * summer.mean(), rel=0.05)
    noisy = render_satellite(world, lat, lon, 48, 160.0, RenderSettings(noise_std=8.0)).astype(float)
    assert np.std(noisy - summer) == pytest.approx(8.0, rel=0.2)


# --- map -------------------------------------------------------------------------------------


def test_map_uses_only_the_palette_and_the_right_classes(world):
    lat, lon = latlon(world, 80.0, 80.0)
    image = render_map(world, lat, lon, size_px=160, ground_m=160.0)  # one pixel per cell
    palette = {tuple(v) for v in MAP_PALETTE.values()}
    assert {tuple(p) for p in image.reshape(-1, 3)} <= palette
    assert tuple(image[100, 14]) == MAP_PALETTE["water"]
    assert tuple(image[80, 40]) == MAP_PALETTE["road_major"]
    assert tuple(image[76, 40]) == MAP_PALETTE["road_major_casing"]
    assert tuple(image[30, 80]) == MAP_PALETTE["road_residential"]
    assert tuple(image[48, 104]) == MAP_PALETTE["building"]
    assert tuple(image[40, 104]) == MAP_PALETTE["building_outline"]
    assert tuple(image[125, 125]) == MAP_PALETTE["park"]
    assert tuple(image[20, 50]) == MAP_PALETTE["grass"]


def test_map_and_satellite_share_the_footprint(world):
    lat, lon = latlon(world, 70.0, 90.0)
    satellite_roof = magenta(render_satellite(world, lat, lon, size_px=64, ground_m=90.0))
    map_tile = render_map(world, lat, lon, size_px=64, ground_m=90.0)
    map_roof = np.all(map_tile == MAP_PALETTE["building"], axis=-1) | np.all(
        map_tile == MAP_PALETTE["building_outline"], axis=-1
    )
    overlap = (satellite_roof & map_roof).sum() / (satellite_roof | map_roof).sum()
    assert satellite_roof.sum() > 50 and overlap > 0.8


# --- drone -----------------------------------------------------------------------------------


@pytest.mark.parametrize("heading", [0.0, 90.0, 225.0])
def test_drone_shows_parallax_of_a_tall_building(heading):
    """The roof of a 50 m tower appears displaced away from the camera (up the image) relative to
    the same footprint at ground level, and its facades fill the gap."""
    box = (slice(68, 92), slice(68, 92))
    tall = make_world(tower_height=50.0, roads=False, tower_box=box)
    flat = make_world(tower_height=0.3, roads=False, tower_box=box)
    lat, lon = latlon(tall, 80.0, 80.0)
    pose = dict(altitude_m=100.0, pitch_deg=45.0, heading_deg=heading)
    rng = np.random.default_rng(0)
    roof_tall = magenta(render_drone(tall, lat, lon, 96, rng, **pose))
    roof_flat = magenta(render_drone(flat, lat, lon, 96, rng, **pose))
    ys_flat, xs_flat = np.nonzero(roof_flat)
    ys_tall, xs_tall = np.nonzero(roof_tall)
    assert len(ys_flat) > 50 and len(ys_tall) > 50
    assert abs(ys_flat.mean() - 47.5) < 3 and abs(xs_flat.mean() - 47.5) < 3  # footprint at the centre
    assert ys_tall.mean() < ys_flat.mean() - 15  # roof displaced up the image, away from the camera
    assert abs(xs_tall.mean() - xs_flat.mean()) < 3
    # Between the footprint and the displaced roof the tower's facade is visible (not grass).
    gap = render_drone(tall, lat, lon, 96, rng, **pose)[
        int(ys_tall.max()) + 2 : int(ys_flat.mean()), 44:52
    ].astype(int)
    assert gap.size and not np.any((gap[..., 1] > gap[..., 0] + 20) & (gap[..., 1] > gap[..., 2] + 20))


def test_drone_looks_at_the_location_for_any_pose(world):
    """A magenta marker under the target stays at the image centre whatever the pose."""
    box = (slice(76, 85), slice(96, 105))
    marked = make_world(tower_height=0.2, tower_box=box)
    lat, lon = latlon(marked, 80.5, 100.5)
    for seed in range(4):
        ys, xs = np.nonzero(magenta(render_drone(marked, lat, lon, 64, np.random.default_rng(seed))))
        assert len(ys) > 3
        assert abs(ys.mean() - 31.5) < 4 and abs(xs.mean() - 31.5) < 4


# --- street ----------------------------------------------------------------------------------


def test_panorama_heading_rotation_rolls_columns(world):
    lat, lon = latlon(world, 80.5, 80.5)
    rng = np.random.default_rng(0)
    base = render_street(world, lat, lon, 32, rng, heading_deg=0.0)
    turned = render_street(world, lat, lon, 32, rng, heading_deg=90.0)
    width = base.shape[1]
    np.testing.assert_array_equal(turned, np.roll(base, -width // 4, axis=1))


def test_panorama_tall_building_blocks_the_horizon(world):
    lat, lon = latlon(world, 80.5, 80.5)
    h = 64
    without = make_world(tower_height=0.0)
    pano = render_street(world, lat, lon, h, np.random.default_rng(0), heading_deg=0.0)
    empty = render_street(without, lat, lon, h, np.random.default_rng(0), heading_deg=0.0)
    width = 2 * h
    # Tower spans azimuths ~20-60 degrees (north-east), and rises to ~60 degrees elevation.
    towards = [int(round(a / 360 * width)) for a in (30, 38, 46)]
    away = [int(round(a / 360 * width)) for a in (150, 210, 270)]
    row_45 = int(round((90 - 45) / 180 * h))  # 45 degrees above the horizon
    for col in towards:
        assert not blue(pano[row_45 : row_45 + 1, col]).any(), "sky visible through the tower"
        assert np.abs(pano[row_45, col].astype(int) - empty[row_45, col].astype(int)).sum() > 60
    for col in away:
        assert blue(pano[: h // 2 - 2, col]).all(), "the sky is blocked where nothing stands"
        np.testing.assert_array_equal(pano[:, col], empty[:, col])


def test_panorama_shows_water_below_the_horizon_and_ground_at_the_bottom(world):
    lat, lon = latlon(world, 60.5, 24.5)  # 3.5-16.5 m east of the river; column 0 looks west
    h = 64
    pano = render_street(world, lat, lon, h, np.random.default_rng(0), heading_deg=270.0)
    below = pano[h // 2 + 4 : h // 2 + 9, 0:3]  # 8-28 degrees below the horizon: 4-14 m away
    assert blue(below).mean() > 0.9
    east = pano[h // 2 + 4 : h // 2 + 9, h - 2 : h + 2]  # looking east: grass, no water
    assert blue(east).mean() < 0.05
    assert not blue(pano[-4:, :]).any()  # straight down: the ground under the viewer


def test_drone_never_flies_inside_a_tower():
    """A 120 m block stands where an 80 m-high camera at 45 degrees would be (70-90 m south of
    the location): the drone tilts steeper, closer in, and still sees the marker at the centre."""
    marked = make_world(tower_height=0.2, tower_box=(slice(46, 55), slice(96, 105)))
    marked.landcover[120:141, 90:111] = LandCover.BUILDING
    marked.height[120:141, 90:111] = 120.0
    marked.building_id[120:141, 90:111] = 9
    lat, lon = latlon(marked, 50.5, 100.5)
    pose = {"altitude_m": 80.0, "pitch_deg": 45.0, "heading_deg": 0.0}
    image = render_drone(marked, lat, lon, 64, np.random.default_rng(0), **pose)
    ys, xs = np.nonzero(magenta(image))
    assert len(ys) > 3 and abs(ys.mean() - 31.5) < 4 and abs(xs.mean() - 31.5) < 4


def test_panorama_from_a_bridge_sees_the_deck_below_and_water_beyond_it(world):
    lat, lon = latlon(world, 80.5, 14.5)  # middle of the bridge over the river
    h = 32
    pano = render_street(world, lat, lon, h, np.random.default_rng(0), heading_deg=0.0)
    deck = pano[-4:].astype(int)  # straight down: the deck, lit like the road it carries
    assert np.all(np.abs(deck - np.array(ROAD)).max(axis=-1) <= 3)
    # Looking north along the river, past the deck's edge (4.5 m away), the water shows.
    assert blue(pano[h // 2 + 1 : h // 2 + 3, 0]).all()


def test_drone_orthophoto_is_a_north_up_crop_at_geoloc_scales_under_another_sun(world):
    from geobridge.world.render.orthophoto import (
        GEOLOC_CROP_SCALES_M,
        flight_settings,
        render_drone_orthophoto,
    )
    from geobridge.world.render.settings import RenderSettings

    lat, lon = latlon(world, 80.0, 80.0)
    settings = RenderSettings()
    image = render_drone_orthophoto(
        world, lat, lon, size_px=64, rng=np.random.default_rng(4), settings=settings
    )
    # the 16 m magenta roof covers (16 / scale * 64)^2 px: the scale is one of GeoLoc's five
    roof_px = magenta(image).sum()
    scale = GEOLOC_CROP_SCALES_M[
        int(np.argmin([abs(roof_px - (16 / s * 64) ** 2) for s in GEOLOC_CROP_SCALES_M]))
    ]
    assert roof_px == pytest.approx((16 / scale * 64) ** 2, rel=0.25)
    # it is the satellite renderer at that scale, lit by the flight's sun, not the satellite pass's
    flight = render_satellite(world, lat, lon, size_px=64, ground_m=scale, settings=flight_settings(settings))
    np.testing.assert_array_equal(image, flight)
    assert not np.array_equal(
        image, render_satellite(world, lat, lon, size_px=64, ground_m=scale, settings=settings)
    )
    # different draws crop at different scales
    areas = {
        int(magenta(render_drone_orthophoto(world, lat, lon, size_px=64, rng=np.random.default_rng(k))).sum())
        for k in range(12)
    }
    assert len(areas) >= 3
