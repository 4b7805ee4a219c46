"""Loaders read trees written in each benchmark's official layout by an independent writer
(tests/official_layouts.py): query/gallery sets, training places and epoch items, coordinates,
layout variants, and listed files that are missing (skipped and counted, not an error)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import official_layouts as official  # noqa: E402

from geobridge.data.benchmarks import DatasetNotFoundError, load_benchmark  # noqa: E402
from geobridge.data.benchmarks.vigor import satellite_latlon  # noqa: E402
from geobridge.geo import haversine_m  # noqa: E402
from geobridge.views import View  # noqa: E402

# -- University-1652 ---------------------------------------------------------------------------


def test_university1652_official_layout(tmp_path):
    root = official.write_university1652(
        tmp_path, n_train=3, n_test=2, n_distractors=2, drone_per_building=4, street_per_building=2
    )
    bench = load_benchmark("university1652", root)
    query, gallery = bench.query_set("D2S"), bench.gallery_set("D2S")
    assert len(query) == 2 * 4 and len(set(query.ids)) == 2
    assert len(gallery) == 2 + 2 and set(query.ids) < set(gallery.ids)  # distractors stay in the gallery
    places = bench.training_places()
    assert [p.id for p in places] == ["0001", "0002", "0003"]
    assert all([p.count(v) for v in (View.DRONE, View.STREET, View.SATELLITE)] == [4, 2, 1] for p in places)
    items = bench.training_locations(["drone", "street", "satellite"])
    assert len(items) == 3 * 4  # an epoch runs over the drone images
    assert all(i.paths["street"] is not None and Path(i.paths["satellite"]).stem == i.id for i in items)


# -- SUES-200 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["split", "raw"])
def test_sues200_split_and_raw_layouts_agree(tmp_path, layout):
    if layout == "split":
        root = official.write_sues200_split(tmp_path, n_places=5, n_train=3, drone_per_place=2)
    else:
        root = official.write_sues200_raw(tmp_path, n_places=5, drone_per_place=2)
    bench = load_benchmark("sues200", root, altitude=200, train_places=3)
    query, gallery = bench.query_set("D2S"), bench.gallery_set("D2S")
    assert query.ids == ["0004", "0004", "0005", "0005"] and all("200" in p.parts for p in query.paths)
    assert gallery.ids == ["0001", "0002", "0003", "0004", "0005"]  # every place, the training ones too
    assert sorted(set(bench.gallery_set("S2D").ids)) == gallery.ids and len(bench.query_set("S2D")) == 2
    places = bench.training_places()
    assert [p.id for p in places] == ["0001", "0002", "0003"]
    assert all(p.count(View.DRONE) == 2 and p.count(View.SATELLITE) == 1 for p in places)
    assert len(bench.training_locations(["drone", "satellite"])) == 3 * 2


def test_sues200_raw_uses_the_official_120_80_split(tmp_path):
    root = official.write_sues200_raw(tmp_path, n_places=200, drone_per_place=1, altitudes=(150,))
    bench = load_benchmark("sues200", root)
    assert sorted(set(bench.query_set("D2S").ids)) == [f"{i:04d}" for i in range(121, 201)]
    assert len(bench.gallery_set("D2S")) == 200 and len(bench.training_places()) == 120


def test_sues200_without_either_layout_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"Testing folder \(or the raw drone-view/ and satellite"):
        load_benchmark("sues200", tmp_path)


# -- VIGOR -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reorganised", [False, True])
def test_vigor_released_and_reorganised_layouts(tmp_path, reorganised):
    root = official.write_vigor(tmp_path, reorganised=reorganised, n_satellites=4, panoramas_per_satellite=2)
    bench = load_benchmark("vigor", root)  # cross-area
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert len(query) == 2 * 8 and len(gallery) == 2 * 4 and set(query.ids) <= set(gallery.ids)
    assert all(len(s) == 3 for s in query.extra["semi_positive_ids"])
    for qid, lat, lon in zip(query.ids, query.lat, query.lon):
        assert haversine_m(lat, lon, *satellite_latlon(qid + ".png")) < 30
    places = bench.training_places()  # NewYork and Seattle: one place per positive satellite
    assert len(places) == 2 * 4
    assert all(p.count(View.STREET) == 2 and p.count(View.SATELLITE) == 1 for p in places)
    assert all((p.lat, p.lon) == satellite_latlon(p.images[View.SATELLITE][0].name) for p in places)
    items = bench.training_locations(["street", "satellite"])
    assert len(items) == 2 * 8  # one item per training panorama
    same = load_benchmark("vigor", root, mode="same")
    assert len(same.query_set("P2S")) == 4 * 4 and len(same.training_places()) == 4 * 4


def test_vigor_corrected_split_folder_is_found(tmp_path):
    root = official.write_vigor(tmp_path, reorganised=True, splits_dir="splits__corrected")
    assert load_benchmark("vigor", root).splits_dir.name == "splits__corrected"


def test_vigor_without_city_folders_is_named(tmp_path):
    root = official.write_vigor(tmp_path)
    for city in official.VIGOR_CITIES:
        shutil.rmtree(root / city)
    with pytest.raises(DatasetNotFoundError, match=r"city folders \(<City>/panorama, or ground/<City>\)"):
        load_benchmark("vigor", root)


def test_vigor_missing_panorama_is_skipped_in_eval_and_training(tmp_path):
    root = official.write_vigor(tmp_path, reorganised=True)
    bench = load_benchmark("vigor", root)
    victim = bench.query_set("P2S").paths[0]
    victim.unlink()
    assert victim not in bench.query_set("P2S").paths and bench.skipped_files == {"panorama": 1}
    trained = next(iter((root / "ground" / "Seattle").iterdir()))
    trained.unlink()
    places = bench.training_places()
    assert sum(p.count(View.STREET) for p in places) == 2 * 8 - 1 and len(places) == 2 * 4
    assert bench.skipped_files["training street image"] == 1


# -- CVUSA -------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_locations", [False, True])
def test_cvusa_official_layout_and_coordinates(tmp_path, with_locations):
    root = official.write_cvusa(tmp_path, n_train=3, n_val=2, with_locations=with_locations)
    bench = load_benchmark("cvusa", root)
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert query.ids == gallery.ids == ["0000004", "0000005"]
    places = bench.training_places()
    assert [p.id for p in places] == ["0000001", "0000002", "0000003"]
    assert all(p.count(View.STREET) == p.count(View.SATELLITE) == 1 for p in places)
    assert len(bench.training_locations(["street", "satellite"])) == 3
    if with_locations:
        np.testing.assert_allclose(query.lat, [38.53, 38.54])
        np.testing.assert_allclose(gallery.lon, [-98.03, -98.04])
        assert (places[0].lat, places[0].lon) == (38.5, -98.0)
    else:
        assert not query.has_coordinates and all(np.isnan(p.lat) for p in places)


def test_cvusa_missing_training_image_is_skipped(tmp_path):
    root = official.write_cvusa(tmp_path)
    (root / "streetview" / "panos" / "0000002.jpg").unlink()
    bench = load_benchmark("cvusa", root)
    places = {p.id: p for p in bench.training_places()}
    assert places["0000002"].count(View.STREET) == 0 and places["0000002"].count(View.SATELLITE) == 1
    assert bench.skipped_files == {"training street image": 1}


def test_cvusa_split_without_any_image_is_named(tmp_path):
    root = official.write_cvusa(tmp_path)
    shutil.rmtree(root / "bingmap")
    with pytest.raises(DatasetNotFoundError, match=r"every listed satellite image \(2 files; this one first"):
        load_benchmark("cvusa", root).gallery_set("P2S")


# -- CVACT -------------------------------------------------------------------------------------


def test_cvact_val_test_and_training_places(tmp_path):
    root = official.write_cvact(tmp_path, n_train=3, n_val=2, n_test=2)
    val = load_benchmark("cvact", root)
    test = load_benchmark("cvact", root, split="test")
    assert val.query_set("P2S").ids == ["pano00003_d", "pano00004_e"]
    query, gallery = test.query_set("P2S"), test.gallery_set("P2S")
    assert query.ids == ["pano00005_f", "pano00006_g"]
    assert all("ANU_data_test" in p.parts for p in query.paths)
    assert gallery.paths[0].name == "pano00005_f_satView_polish.jpg"
    assert np.all((query.lat > -35.5) & (query.lat < -35.0) & (query.lon > 149.0) & (query.lon < 149.3))
    places = val.training_places()
    assert [p.id for p in places] == ["pano00000_a", "pano00001_b", "pano00002_c"]
    assert all("ANU_data_small" in p.images[View.STREET][0].parts and -35.5 < p.lat < -35.0 for p in places)
    assert len(test.training_locations(["street", "satellite"])) == 3


def test_cvact_test_without_its_images_is_named(tmp_path):
    root = official.write_cvact(tmp_path)
    shutil.rmtree(root / "ANU_data_test")
    load_benchmark("cvact", root)  # val is intact
    with pytest.raises(DatasetNotFoundError, match=r"image folder ANU_data_test of the test split not found"):
        load_benchmark("cvact", root, split="test")


def test_cvact_missing_query_is_skipped(tmp_path):
    root = official.write_cvact(tmp_path)
    (root / "ANU_data_small" / "streetview" / "pano00003_d_grdView.jpg").unlink()
    bench = load_benchmark("cvact", root)
    query = bench.query_set("P2S")
    assert query.ids == ["pano00004_e"] and len(query.lat) == 1 and bench.skipped_files == {"street image": 1}


# -- GeoText-1652 and GeoLoc -------------------------------------------------------------------


def test_geotext1652_official_layout(tmp_path):
    root = official.write_geotext1652(tmp_path, n_train=3, n_test=2, drone_per_building=2)
    official_setting = load_benchmark("geotext1652", root)
    assert [d.name for d in official_setting.directions()] == ["T2I"]
    assert (
        len(official_setting.query_set("T2I")) == 2 * 3 * 3
        and len(official_setting.gallery_set("T2I")) == 2 * 3
    )
    bench = load_benchmark("geotext1652", root, match="image")
    assert [d.name for d in bench.directions()] == ["T2D", "T2S"]
    assert len(bench.query_set("T2D")) == 2 * 2 * 3 and len(bench.gallery_set("T2S")) == 2
    places = bench.training_places()
    assert len(places) == 3 and all(p.count(View.DRONE) == 2 and p.count(View.SATELLITE) == 1 for p in places)
    items = bench.training_locations(["text", "drone", "satellite"])
    assert len(items) == 3 * 2 and all(Path(i.paths["drone"]).name in i.text for i in items)
    (root / "images" / "test" / "query_drone" / "0004" / "image-01.jpeg").unlink()
    assert len(bench.gallery_set("T2D")) == 3 and bench.skipped_files == {"drone image": 1}


def test_geoloc_official_layout(tmp_path):
    root = official.write_geoloc(tmp_path, n_train=3, n_test=2)
    bench = load_benchmark("geoloc", root)
    query = bench.query_set("D2S")
    np.testing.assert_allclose(query.lat, [48.8805, 48.8905])
    places = bench.training_places()
    assert len(places) == 3 and all(p.text and np.isfinite(p.lat) for p in places)
    victim = bench.gallery_set("D2S").paths[0]
    victim.unlink()
    assert len(bench.gallery_set("D2S")) == 1 and bench.skipped_files == {"satellite image": 1}


# -- the evaluation notes skipped files --------------------------------------------------------


def test_evaluation_notes_the_skipped_files(tmp_path):
    from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
    from geobridge.models import create_model

    root = official.write_cvusa(tmp_path, n_train=1, n_val=3)
    (root / "streetview" / "panos" / "0000002.jpg").unlink()
    results = evaluate_model_on_dataset(create_model("tiny"), "cvusa", root, progress=False)
    for name in ("P2S", "S2P"):
        assert "1 listed street image file(s) missing from the dataset were skipped" in results[name].notes
    assert results["P2S"].n_query == 2 and results["S2P"].n_gallery == 2
