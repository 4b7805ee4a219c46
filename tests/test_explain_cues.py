"""Cues measured by colour and gradient rules: checked on synthetic images with known content
and against the map view of the embedded world (an independent rendering of the true land cover)."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.explain.cues import extract_cues, layout_cues
from geobridge.records import read_manifest

MAP_WATER = np.array((170, 211, 223))
MAP_BUILDING = np.array((217, 208, 201))


def _solid(rgb, size=32):
    return np.tile(np.array(rgb, dtype=np.uint8), (size, size, 1))


@pytest.mark.parametrize(
    "colour, expected",
    [
        ((52, 92, 134), "water"),
        ((88, 144, 72), "vegetation"),
        ((176, 82, 58), "built"),
        ((80, 80, 84), "road"),
        ((152, 138, 112), "bare"),
    ],
)
def test_solid_surfaces_are_classified_as_their_land_cover(colour, expected):
    cues = extract_cues(_solid(colour), "satellite")
    assert cues.landcover[expected] > 0.95
    assert abs(sum(cues.landcover.values()) - 1.0) < 1e-6


def test_red_roofs_are_named_red():
    image = _solid((112, 146, 78), 40)
    image[10:30, 10:30] = (176, 82, 58)
    cues = extract_cues(image, "satellite")
    assert cues.dominant_roof == "red"
    assert 0.2 < cues.landcover["built"] < 0.3  # 400 of 1600 pixels


def test_grid_layout_is_more_regular_than_noise():
    rng = np.random.default_rng(0)
    grid = _solid((112, 146, 78), 64)
    grid[::16, :] = (70, 70, 70)
    grid[:, ::16] = (70, 70, 70)
    noise = rng.integers(0, 255, size=(64, 64, 3), dtype=np.uint8)
    assert layout_cues(grid).regularity > layout_cues(noise).regularity + 0.3


def test_panorama_with_tall_buildings_has_a_higher_skyline_and_less_sky():
    h, w = 32, 64
    sky, ground, facade = (140, 180, 230), (98, 98, 102), (150, 120, 100)
    open_pano = np.zeros((h, w, 3), np.uint8)
    open_pano[: h // 2], open_pano[h // 2 :] = sky, ground
    tall = open_pano.copy()
    tall[4 : h // 2] = facade  # buildings reaching 70 degrees all around
    open_cues, tall_cues = extract_cues(open_pano, "street").skyline, extract_cues(tall, "street").skyline
    assert open_cues.sky_fraction > 0.95 and tall_cues.sky_fraction < 0.3
    assert tall_cues.skyline_mean_deg > 60 > open_cues.skyline_mean_deg
    assert tall_cues.enclosed_fraction == 1.0 and open_cues.enclosed_fraction == 0.0


def test_bad_images_are_rejected_with_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found"):
        extract_cues(tmp_path / "missing.png", "drone")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not an image"):
        extract_cues(tmp_path / "junk.png", "drone")
    with pytest.raises(ValueError, match="text"):
        extract_cues(_solid((0, 0, 0)), "text")


def test_water_rich_locations_show_more_water_from_the_satellite_than_built_up_ones(tiny_world_dir):
    """Ground truth: exact water / building pixels of the map view (rendered from the true land cover)."""
    from PIL import Image

    rows = []
    for loc in read_manifest(tiny_world_dir):
        tile = np.asarray(Image.open(loc.path("map")).convert("RGB")).astype(int)
        true_water = float((np.abs(tile - MAP_WATER).sum(axis=2) == 0).mean())
        true_built = float((np.abs(tile - MAP_BUILDING).sum(axis=2) <= 6).mean())
        cues = extract_cues(loc.path("satellite"), "satellite")
        rows.append((true_water, true_built, cues.landcover["water"], cues.landcover["built"]))
    rows = np.array(rows)
    water_rich = rows[rows[:, 0] > 0.1]
    built_up = rows[(rows[:, 1] > 0.3) & (rows[:, 0] < 0.02)]
    assert len(water_rich) >= 3 and len(built_up) >= 3, "the tiny world should have both kinds of place"
    assert water_rich[:, 2].mean() > built_up[:, 2].mean() + 0.1
    assert built_up[:, 3].mean() > water_rich[:, 3].mean()
    # and across all locations the measured water share follows the true one
    assert np.corrcoef(rows[:, 0], rows[:, 2])[0, 1] > 0.8
