"""Benchmark loaders on tiny fixtures written in each dataset's real layout."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from geobridge.data.benchmarks import DatasetNotFoundError, ImageSet, list_benchmarks, load_benchmark
from geobridge.data.benchmarks.geoloc import FOOTPRINT_BOX_PATTERN, coordinates_from_name
from geobridge.data.benchmarks.vigor import panorama_latlon, satellite_latlon
from geobridge.data.fixtures import list_fixtures, write_fixture
from geobridge.geo import haversine_m
from geobridge.views import Direction, View

N = 4


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    """One clean fixture per dataset, shared by the read-only tests."""
    base = tmp_path_factory.mktemp("benchmarks")
    return {name: write_fixture(name, base / name, n_locations=N) for name in list_fixtures()}


def fresh(name: str, tmp_path: Path) -> Path:
    """A private fixture the test may break."""
    return write_fixture(name, tmp_path / name, n_locations=N)


def names(directions: list[Direction]) -> list[str]:
    return [d.name for d in directions]


# -- registry ------------------------------------------------------------------------------------


def test_every_benchmark_has_a_fixture_writer():
    assert set(list_benchmarks()) == set(list_fixtures())
    assert set(list_benchmarks()) >= {
        "world",
        "geoloc",
        "university1652",
        "cvusa",
        "cvact",
        "vigor",
        "sues200",
        "geotext1652",
    }


def test_unknown_name_and_option_are_clear_errors(fixtures):
    with pytest.raises(ValueError, match="unknown benchmark 'imagenet'.*cvusa"):
        load_benchmark("imagenet", fixtures["cvusa"])
    with pytest.raises(ValueError, match="cvusa does not take option.*altitude.*its options are: split"):
        load_benchmark("cvusa", fixtures["cvusa"], altitude=150)
    # spelling variants of a name resolve to the same loader
    assert load_benchmark("University-1652", fixtures["university1652"]).name == "university1652"


def test_missing_root_names_it(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"cvusa: dataset root folder not found: .*nowhere.*Get the dataset from"
    ):
        load_benchmark("cvusa", tmp_path / "nowhere")


def test_imageset_rejects_inconsistent_lengths():
    with pytest.raises(ValueError, match="2 ids but 1 paths"):
        ImageSet(view=View.DRONE, ids=["a", "b"], paths=[Path("a.jpg")])
    with pytest.raises(ValueError, match="needs texts"):
        ImageSet(view=View.TEXT, ids=["a"])


# -- University-1652 -----------------------------------------------------------------------------


def test_university1652_sets_labels_and_distractors(fixtures):
    bench = load_benchmark("university1652", fixtures["university1652"])
    assert bench.default_protocol == "u1652"
    assert names(bench.directions()) == ["D2S", "S2D", "P2S", "S2P", "D2P", "P2D"]
    query, gallery = bench.query_set("D2S"), bench.gallery_set("D2S")
    assert query.view is View.DRONE and gallery.view is View.SATELLITE
    assert len(query) == 3 * N and sorted(set(query.ids)) == [f"{1001 + i:04d}" for i in range(N)]
    assert all(p.parent.name == label for p, label in zip(query.paths, query.ids))
    assert all(p.parts[-3] == "query_drone" for p in query.paths)
    # the gallery keeps the distractor buildings (labels no query has)
    distractors = set(gallery.ids) - set(query.ids)
    assert len(gallery) == N + N // 2 and distractors == {"2001", "2002"}
    assert all(p.stem == label for p, label in zip(gallery.paths, gallery.ids))
    s2d = bench.query_set("S2D")
    assert len(s2d) == N and bench.gallery_set("S2D").view is View.DRONE


def test_university1652_protocol_option_and_training_places(fixtures):
    bench = load_benchmark("university1652", fixtures["university1652"], protocol="u1652-s4g")
    assert bench.default_protocol == "u1652-s4g"
    with pytest.raises(ValueError, match="protocol must be one of u1652, u1652-s4g"):
        load_benchmark("university1652", fixtures["university1652"], protocol="pairs")
    places = bench.training_places()
    assert len(places) == N and all(p.count(View.DRONE) == 3 and p.count(View.SATELLITE) == 1 for p in places)
    assert all(p.images[View.SATELLITE][0].stem == p.id for p in places)
    items = bench.training_locations(["drone", "satellite"])
    assert len(items) == 3 * N  # an epoch runs over the drone images
    assert all(Path(i.paths["drone"]).parent.name == i.id == Path(i.paths["satellite"]).stem for i in items)
    assert all(Path(i.paths["drone"]).parts[-3] == "drone" for i in items)


def test_university1652_missing_gallery_is_named(tmp_path):
    root = fresh("university1652", tmp_path)
    shutil.rmtree(root / "test" / "gallery_satellite")
    with pytest.raises(
        DatasetNotFoundError, match=r"test folder gallery_satellite not found: .*test/gallery_satellite"
    ):
        load_benchmark("university1652", root)


def test_university1652_without_street_offers_drone_satellite_only(tmp_path):
    root = fresh("university1652", tmp_path)
    shutil.rmtree(root / "test" / "query_street")
    shutil.rmtree(root / "test" / "gallery_street")
    assert names(load_benchmark("university1652", root).directions()) == ["D2S", "S2D"]


# -- SUES-200 ------------------------------------------------------------------------------------


def test_sues200_galleries_hold_every_place(fixtures):
    bench = load_benchmark("sues200", fixtures["sues200"], altitude=250)
    n_train = round(N * 0.6)
    query, gallery = bench.query_set("D2S"), bench.gallery_set("D2S")
    test_places = [f"{i:04d}" for i in range(n_train + 1, N + 1)]
    assert sorted(set(query.ids)) == test_places and len(query) == 2 * len(test_places)
    assert sorted(gallery.ids) == [f"{i:04d}" for i in range(1, N + 1)]  # training places are distractors
    assert all("250" in p.parts for p in query.paths + gallery.paths)
    assert len(bench.gallery_set("S2D")) == 2 * N and len(bench.query_set("S2D")) == len(test_places)
    assert len(bench.training_places()) == n_train
    assert len(bench.training_locations(["drone", "satellite"])) == 2 * n_train
    with pytest.raises(ValueError, match="altitude must be one of"):
        load_benchmark("sues200", fixtures["sues200"], altitude=100)


def test_sues200_missing_altitude_is_named(tmp_path):
    root = fresh("sues200", tmp_path)
    shutil.rmtree(root / "Testing" / "300" / "gallery_satellite")
    load_benchmark("sues200", root, altitude=150)  # other altitudes are intact
    with pytest.raises(
        DatasetNotFoundError, match=r"gallery_satellite not found: .*Testing/300/gallery_satellite"
    ):
        load_benchmark("sues200", root, altitude=300)


# -- CVUSA -----------------------------------------------------------------------------------


def test_cvusa_reads_headerless_split_csv(fixtures):
    root = fixtures["cvusa"]
    with open(root / "splits" / "val-19zl.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0].startswith("bingmap/19/") and len(rows) == N  # no header row
    bench = load_benchmark("cvusa", root)
    assert bench.default_protocol == "pairs" and names(bench.directions()) == ["P2S", "S2P"]
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert query.view is View.STREET and gallery.view is View.SATELLITE
    assert query.ids == gallery.ids == [Path(r[0]).stem for r in rows]
    assert all(p.parent == root / "streetview" / "panos" for p in query.paths)
    assert all(p.parent == root / "bingmap" / "19" for p in gallery.paths)
    train = load_benchmark("cvusa", root, split="train").query_set("P2S")
    assert set(train.ids).isdisjoint(query.ids)
    places = bench.training_places()
    assert [p.id for p in places] == train.ids
    assert all(p.images[View.STREET][0].stem == p.images[View.SATELLITE][0].stem for p in places)
    assert all(np.isnan(p.lat) for p in places) and not train.has_coordinates  # no split_locations/all.csv


def test_cvusa_missing_image_is_skipped_and_missing_split_named(tmp_path):
    root = fresh("cvusa", tmp_path)
    victim = sorted((root / "streetview" / "panos").iterdir())[-1]
    victim.unlink()
    bench = load_benchmark("cvusa", root)
    query = bench.query_set("P2S")
    assert victim not in query.paths and len(query) == len(bench.gallery_set("P2S")) - 1
    assert bench.skipped_files == {"street image": 1}
    (root / "splits" / "val-19zl.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"val split file not found: .*splits/val-19zl.csv"):
        load_benchmark("cvusa", root)


# -- CVACT ---------------------------------------------------------------------------------------


def test_cvact_uses_one_based_indices_and_utm(fixtures):
    from scipy.io import loadmat

    root = fixtures["cvact"]
    mat = loadmat(str(root / "ACT_data.mat"), squeeze_me=True, struct_as_record=False)
    all_ids = [str(i) for i in mat["panoIds"]]
    val_indices = np.atleast_1d(mat["valSet"].valInd).astype(int)
    assert val_indices.min() >= 1  # MATLAB convention in the file
    bench = load_benchmark("cvact", root)
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert query.ids == gallery.ids == [all_ids[i - 1] for i in val_indices]
    assert query.paths[0].name == f"{query.ids[0]}_grdView.jpg"
    assert gallery.paths[0].name == f"{gallery.ids[0]}_satView_polish.jpg"
    # UTM zone 55 South -> Canberra
    assert np.all((query.lat > -36.5) & (query.lat < -34.5) & (query.lon > 148) & (query.lon < 150))
    places = bench.training_places()
    assert len(places) == N and all(-36.5 < p.lat < -34.5 and 148 < p.lon < 150 for p in places)


def test_cvact_reads_char_matrix_ids(tmp_path):
    from scipy.io import savemat

    from geobridge.data.benchmarks.cvact import read_act_data

    path = tmp_path / "ACT_data.mat"
    savemat(
        path,
        {
            "panoIds": np.array(["aaa", "bbb", "ccc"]),
            "utm": np.zeros((3, 2)),
            "trainSet": {"trainInd": np.array([[1.0], [3.0]])},
            "valSet": {"valInd": np.array([[2.0]])},
        },
    )
    data = read_act_data(path)
    assert data.pano_ids == ["aaa", "bbb", "ccc"]
    assert data.split_indices["train"].tolist() == [0, 2] and data.split_indices["val"].tolist() == [1]
    savemat(path, {"panoIds": np.array(["aaa"]), "valSet": {"valInd": np.array([[2.0]])}})
    with pytest.raises(ValueError, match=r"valSet.valInd holds indices outside 1..1 \(they are 1-based\)"):
        read_act_data(path)


def test_cvact_missing_image_is_skipped_and_missing_mat_named(tmp_path):
    root = fresh("cvact", tmp_path)
    victim = sorted((root / "ANU_data_small" / "satview_polish").iterdir())[-1]
    victim.unlink()
    bench = load_benchmark("cvact", root)
    gallery = bench.gallery_set("P2S")
    assert victim not in gallery.paths and len(gallery) == len(gallery.lat) == len(bench.query_set("P2S")) - 1
    assert bench.skipped_files == {"satellite image": 1}
    (root / "ACT_data.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ACT_data.mat not found: .*ACT_data.mat.*OriCNN"):
        load_benchmark("cvact", root)


# -- VIGOR ---------------------------------------------------------------------------------------


def test_vigor_name_parsing():
    assert panorama_latlon("abc_-x,41.8812345,-87.6301234,.jpg") == (41.8812345, -87.6301234)
    assert satellite_latlon("satellite_41.88_-87.63.png") == (41.88, -87.63)
    with pytest.raises(ValueError, match="is not 'satellite_<lat>_<lon>.png'"):
        satellite_latlon("sat_41.88.png")


def test_vigor_cross_area_sets_and_semi_positives(fixtures):
    bench = load_benchmark("vigor", fixtures["vigor"])
    assert bench.default_protocol == "vigor" and names(bench.directions()) == ["P2S"]
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert (
        {p.parts[-3] for p in query.paths}
        == {"Chicago", "SanFrancisco"}
        == {p.parts[-3] for p in gallery.paths}
    )
    assert len(query) == 2 * N
    gallery_ids = set(gallery.ids)
    assert len(gallery_ids) == len(gallery)
    semis = query.extra["semi_positive_ids"]
    for qid, semi, lat, lon, path in zip(query.ids, semis, query.lat, query.lon, query.paths):
        assert qid in gallery_ids and len(semi) == 3 and set(semi) <= gallery_ids and qid not in semi
        assert (lat, lon) == panorama_latlon(path.name)
        # the positive satellite is the one whose centre the panorama lies near
        assert haversine_m(lat, lon, *satellite_latlon(qid + ".png")) < 60
    assert bench.protocol_options("P2S", query, gallery) == {"semi_positives": semis}
    places = bench.training_places()
    assert {p.images[View.STREET][0].parts[-3] for p in places} == {"NewYork", "Seattle"}
    assert all(p.images[View.SATELLITE][0].stem == p.id for p in places)
    assert len(bench.training_locations(["street", "satellite"])) == 2 * N  # one item per panorama


def test_vigor_same_area_uses_all_cities(fixtures):
    bench = load_benchmark("vigor", fixtures["vigor"], mode="same")
    query, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")
    assert {p.parts[-3] for p in gallery.paths} == {"Chicago", "NewYork", "SanFrancisco", "Seattle"}
    assert len(query) == 4 * (N // 2)
    train = {Path(i.paths["street"]) for i in bench.training_locations(["street", "satellite"])}
    assert train.isdisjoint(query.paths)


def test_vigor_missing_satellite_is_skipped_and_missing_split_named(tmp_path):
    root = fresh("vigor", tmp_path)
    listed = (root / "splits" / "Chicago" / "satellite_list.txt").read_text().split()
    (root / "Chicago" / "satellite" / listed[0]).unlink()
    bench = load_benchmark("vigor", root)
    assert Path(listed[0]).stem not in bench.gallery_set("P2S").ids
    assert bench.skipped_files == {"satellite image": 1}
    (root / "splits" / "SanFrancisco" / "pano_label_balanced.txt").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"SanFrancisco split file not found: .*pano_label_balanced.txt"
    ):
        load_benchmark("vigor", root)


# -- GeoText-1652 --------------------------------------------------------------------------------


def test_geotext1652_official_setting_is_the_default(fixtures):
    root = fixtures["geotext1652"]
    bench = load_benchmark("geotext1652", root)
    assert bench.default_protocol == "geotext" and names(bench.directions()) == ["T2I"]
    (t2i,) = bench.directions()
    assert t2i.pooled == (View.DRONE, View.SATELLITE, View.STREET) and bench.check_direction("t2i") == t2i
    entries = json.loads((root / "test_951_version.json").read_text())
    query = bench.query_set("T2I")  # every caption of every test image, labelled by building
    assert query.view is View.TEXT and len(query) == N * 4 * 3  # 2 drone, 1 satellite, 1 street; 3 captions
    assert query.texts == [c for e in entries for c in e["caption"]]
    assert query.ids == [e["image_id"].split("/")[0] for e in entries for _ in e["caption"]]
    parts = bench.gallery_parts("T2I")  # one image set per view, each embedded by its own tower
    assert [p.view for p in parts] == [View.DRONE, View.SATELLITE, View.STREET]
    assert [len(p) for p in parts] == [2 * N, N, N]
    gallery = bench.gallery_set("T2I")  # the same, pooled
    assert gallery.ids == [i for p in parts for i in p.ids] and len(set(gallery.ids)) == N
    assert gallery.extra["views"] == [p.view for p in parts for _ in p.ids]
    with pytest.raises(ValueError, match="has no direction T2S; it defines T2I .*--option match=image"):
        bench.query_set("T2S")
    with pytest.raises(ValueError, match="match must be 'official', 'image' or 'building'"):
        load_benchmark("geotext1652", root, match="images")


def test_geotext1652_image_level_text_queries(fixtures):
    root = fixtures["geotext1652"]
    bench = load_benchmark("geotext1652", root, match="image")
    assert bench.default_protocol == "pairs" and names(bench.directions()) == ["T2D", "T2S", "T2P"]
    entries = {e["image_id"]: e for e in json.loads((root / "test_951_version.json").read_text())}
    query, gallery = bench.query_set("T2D"), bench.gallery_set("T2D")
    assert query.view is View.TEXT and len(query) == N * 2 * 3  # 2 drone images, 3 captions each
    assert len(gallery) == 2 * N and len(set(gallery.ids)) == len(gallery)
    for qid, text, sentences in zip(query.ids, query.texts, query.extra["sentences"]):
        assert text in entries[qid]["caption"] and sentences == entries[qid]["sentences"]
        assert qid in gallery.ids
    assert all(Path(i).name.startswith("image-") for i in gallery.ids)
    satellites = bench.gallery_set("T2S")
    assert all(Path(i).stem == i.split("/")[0] for i in satellites.ids)


def test_geotext1652_building_level(fixtures):
    bench = load_benchmark("geotext1652", fixtures["geotext1652"], match="building")
    assert bench.default_protocol == "u1652"
    query, gallery = bench.query_set("T2S"), bench.gallery_set("T2S")
    assert len(query) == N * 2 * 3  # captions of drone images
    assert sorted(gallery.ids) == sorted(set(query.ids)) and len(gallery) == N
    items = bench.training_locations(["text", "drone"])
    assert len(items) == N * 2 and all(i.text for i in items)  # one item per drone image, with its caption


def test_geotext1652_missing_image_is_skipped_and_missing_json_named(tmp_path):
    root = fresh("geotext1652", tmp_path)
    victim = next((root / "images" / "test").rglob("image-01.jpeg"))
    victim.unlink()
    bench = load_benchmark("geotext1652", root, match="image")
    gallery = bench.gallery_set("T2D")
    assert victim not in gallery.paths and len(gallery) == 2 * N - 1
    assert bench.skipped_files == {"drone image": 1}
    (root / "test_951_version.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"annotation file not found: .*test_951_version.json"):
        load_benchmark("geotext1652", root)


# -- GeoLoc and world ----------------------------------------------------------------------------


def test_geoloc_stems_texts_and_footprint_coordinates(fixtures):
    root = fixtures["geoloc"]
    bench = load_benchmark("geoloc", root)  # the folder holding data/ is accepted
    assert bench.default_protocol == "geobridge"
    assert names(bench.directions()) == ["D2S", "S2D", "D2P", "P2D", "P2S", "S2P", "T2D", "T2P", "T2S"]
    query, gallery = bench.query_set("D2S"), bench.gallery_set("D2S")
    assert len(query) == N and query.ids == gallery.ids
    assert all(p.stem == i for p, i in zip(query.paths, query.ids))
    with open(root / "data" / "test" / "text.csv", newline="") as handle:
        texts = {row["id"]: row["text"] for row in csv.DictReader(handle)}
    text_queries = bench.query_set("T2S")
    assert dict(zip(text_queries.ids, text_queries.texts)) == texts
    # coordinates: centre of the footprint box in the stem
    for ident, lat, lon in zip(query.ids, query.lat, query.lon):
        _, lat1, lon1, lat2, lon2 = (float(x) for x in ident.split("_"))
        assert lat == pytest.approx((lat1 + lat2) / 2) and lon == pytest.approx((lon1 + lon2) / 2)
    assert len(bench.training_places()) == N


def test_geoloc_id_and_coordinate_patterns(fixtures):
    bench = load_benchmark("geoloc", fixtures["geoloc"] / "data", id_pattern=r"^(?P<id>\d+)_")
    query = bench.query_set("P2D")
    assert all(len(i) == 5 and i.isdigit() for i in query.ids) and query.has_coordinates
    plain = load_benchmark("geoloc", fixtures["geoloc"], coordinate_pattern=None)
    assert not plain.query_set("D2S").has_coordinates
    assert coordinates_from_name("x_1.5_2.5", re.compile(r"(?P<lat>[\d.]+)_(?P<lon>[\d.]+)$")) == (1.5, 2.5)
    assert coordinates_from_name("000123", re.compile(FOOTPRINT_BOX_PATTERN)) is None


def test_geoloc_missing_split_is_named(tmp_path):
    root = fresh("geoloc", tmp_path)
    shutil.rmtree(root / "data" / "test")
    with pytest.raises(DatasetNotFoundError, match=r"split folder test not found: .*test"):
        load_benchmark("geoloc", root / "data")


def test_world_manifest_views_and_coordinates(fixtures):
    from geobridge.records import read_manifest

    root = fixtures["world"]
    bench = load_benchmark("world", root)
    truth = {loc.id: loc for loc in read_manifest(root, split="test")}
    assert bench.default_protocol == "geobridge"
    assert {"D2S", "S2D", "T2S", "D2M", "M2S", "T2M"} <= set(names(bench.directions()))
    query = bench.query_set("M2P")
    assert query.view is View.MAP and sorted(query.ids) == sorted(truth)
    for ident, lat, path in zip(query.ids, query.lat, query.paths):
        assert lat == truth[ident].lat and path == truth[ident].path(View.MAP)
    text = bench.query_set("T2D")
    assert [truth[i].text for i in text.ids] == text.texts
    assert (
        load_benchmark("world", root / "manifest.parquet", split="val").query_set("D2S").ids[0] not in truth
    )


def test_world_missing_image_is_skipped_and_missing_manifest_named(tmp_path):
    root = fresh("world", tmp_path)
    victim = sorted((root / "test" / "satellite").iterdir())[0]
    victim.unlink()
    bench = load_benchmark("world", root)
    gallery = bench.gallery_set("D2S")
    assert victim not in gallery.paths and len(gallery) == len(gallery.lat) == len(bench.query_set("D2S")) - 1
    assert bench.skipped_files == {"satellite image": 1}
    (root / "manifest.parquet").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"world: manifest not found: .*manifest.parquet.*geobridge world"
    ):
        load_benchmark("world", root)


def test_unknown_direction_is_a_clear_error(fixtures):
    bench = load_benchmark("cvusa", fixtures["cvusa"])
    with pytest.raises(ValueError, match="cvusa has no direction D2S; it defines P2S, S2P"):
        bench.query_set("D2S")


def test_fixtures_are_deterministic(tmp_path):
    a = write_fixture("cvusa", tmp_path / "a", n_locations=2, image_size=16, seed=3)
    b = write_fixture("cvusa", tmp_path / "b", n_locations=2, image_size=16, seed=3)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    from PIL import Image

    with Image.open(a / "streetview" / "panos" / "0000001.jpg") as pano:
        assert pano.size == (32, 16)  # panoramas are twice as wide as high
    with pytest.raises(ValueError, match="no fixture writer for 'mnist'"):
        write_fixture("mnist", tmp_path / "c")
