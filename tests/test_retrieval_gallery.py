"""Gallery directories: build, save/load, search by image and text, add, checksums, model match."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from geobridge.records import read_manifest
from geobridge.retrieval.gallery import (
    Gallery,
    GalleryCorruptError,
    GalleryError,
    GalleryModelMismatchError,
    QueryError,
)
from geobridge.retrieval.sources import SourceError, read_locations
from geobridge.views import View


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from geobridge.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    create_model("tiny").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model(model_dir):
    from geobridge.models import load_model

    return load_model(model_dir)


@pytest.fixture(scope="module")
def locations(tiny_world_dir):
    return read_manifest(tiny_world_dir)


@pytest.fixture(scope="module")
def built(model, model_dir, locations, tmp_path_factory):
    out = tmp_path_factory.mktemp("galleries") / "satellite"
    Gallery.build(model, locations, View.SATELLITE, out=out, model_path=model_dir, progress=False)
    return out


def test_directory_layout_and_summary(built, locations):
    names = sorted(p.name for p in built.iterdir())
    assert names == ["checksums.json", "gallery.json", "index.npy", "metadata.parquet"]
    gallery = Gallery.load(built)
    summary = gallery.summary()
    assert (
        summary["size"] == len(locations) and summary["view"] == "satellite" and summary["index"] == "exact"
    )
    assert summary["query_views"] == ["drone", "street", "satellite", "map", "text"]
    assert summary["bounds"]["south"] == pytest.approx(min(loc.lat for loc in locations))
    assert list(gallery.metadata.columns) == ["id", "lat", "lon", "path", "size_m"]


def test_each_satellite_image_finds_itself_first_with_zero_error(built, locations):
    gallery = Gallery.load(built)  # the model is loaded from the recorded path
    queries = locations[:5]
    results = gallery.search(
        images=[loc.path("satellite") for loc in queries],
        view="satellite",
        k=3,
        truth=[(loc.lat, loc.lon) for loc in queries],
    )
    for loc, result in zip(queries, results):
        best = result.best
        assert best.id == loc.id and best.rank == 1
        assert best.score == pytest.approx(1.0, abs=1e-4)
        assert (best.lat, best.lon) == (pytest.approx(loc.lat), pytest.approx(loc.lon))
        assert best.error_m == pytest.approx(0.0, abs=1e-6)
        assert best.path == loc.path("satellite").resolve().relative_to(gallery.root).as_posix()  # portable
        assert gallery.path_of(best.id) == loc.path("satellite").resolve()
        assert [m.rank for m in result.matches] == [1, 2, 3]
        assert result.matches[1].error_m > 0
        assert result.matches[0].score >= result.matches[1].score >= result.matches[2].score
    assert json.loads(json.dumps(results[0].to_dict()))["matches"][0]["id"] == queries[0].id


def test_text_query_ranks_gallery_entries(built, model):
    gallery = Gallery.load(built, model=model)
    result = gallery.search(text="a park beside a river with a bridge", k=4)[0]
    assert result.view == "text" and len(result.matches) == 4
    ids = set(gallery.metadata["id"])
    assert all(m.id in ids for m in result.matches)
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)


def test_corrupted_file_is_detected_by_checksum(built, tmp_path):
    for name in ("index.npy", "metadata.parquet", "gallery.json"):
        copy = tmp_path / name
        shutil.copytree(built, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(GalleryCorruptError, match=f"{name} does not match its checksum"):
            Gallery.load(copy)
    missing = tmp_path / "missing"
    shutil.copytree(built, missing)
    (missing / "index.npy").unlink()
    with pytest.raises(GalleryCorruptError, match="index.npy is missing"):
        Gallery.load(missing)
    with pytest.raises(GalleryError, match="is not a gallery"):
        Gallery.load(tmp_path / "nowhere")


def test_a_different_model_is_refused(built):
    from geobridge.models import create_model

    torch.manual_seed(1)
    other = create_model("tiny")
    with pytest.raises(GalleryModelMismatchError, match="weights differ"):
        Gallery.load(built, model=other)
    with pytest.raises(GalleryModelMismatchError, match="configuration differs"):
        Gallery.load(built, model=create_model("tiny", embed_dim=64))


def test_add_appends_without_rebuilding(model, model_dir, locations, tmp_path):
    train = [loc for loc in locations if loc.split == "train"]
    rest = [loc for loc in locations if loc.split != "train"]
    folder = tmp_path / "growing"
    Gallery.build(model, train, "satellite", out=folder, model_path=model_dir, progress=False)
    before = np.load(folder / "index.npy")
    gallery = Gallery.load(folder)
    assert gallery.add(rest, progress=False) == len(rest)
    reopened = Gallery.load(folder)
    assert len(reopened) == len(locations)
    after = np.load(folder / "index.npy")
    np.testing.assert_array_equal(after[: len(train)], before)  # existing entries untouched
    assert list(reopened.metadata["id"]) == [loc.id for loc in train + rest]
    found = reopened.search(images=[rest[0].path("satellite")], view="satellite", k=1)[0]
    assert found.best.id == rest[0].id
    with pytest.raises(GalleryError, match="already in the gallery"):
        reopened.add(rest[:1], progress=False)


def test_faiss_gallery_agrees_with_exact_and_grows(model, model_dir, locations, built, tmp_path):
    folder = tmp_path / "flat"
    Gallery.build(
        model, locations[:20], "satellite", out=folder, index="Flat", model_path=model_dir, progress=False
    )
    assert (folder / "index.faiss").is_file() and not (folder / "index.npy").exists()
    assert Gallery.load(folder, model=model).add(locations[20:], progress=False) == len(locations) - 20
    faiss_gallery, exact_gallery = Gallery.load(folder, model=model), Gallery.load(built, model=model)
    images = [loc.path("drone") for loc in locations[:6]]
    got = faiss_gallery.search(images=images, view="drone", k=5)
    want = exact_gallery.search(images=images, view="drone", k=5)
    assert [[m.id for m in r.matches] for r in got] == [[m.id for m in r.matches] for r in want]


def test_bad_queries_are_clear_errors(built, model, tmp_path):
    gallery = Gallery.load(built, model=model)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cases = [
        (dict(text="   "), "empty"),
        (dict(images=[bad], view="drone"), "cannot read image .*bad.png"),
        (dict(images=[bad], view="sideways"), "unknown view 'sideways'"),
        (dict(images=[bad], view="ground"), "cannot embed ground queries"),
        (dict(images=[bad]), "say which view"),
        (dict(text="a park", k=0), "k must be a positive integer"),
        (dict(), "either images"),
    ]
    for kwargs, message in cases:
        with pytest.raises(QueryError, match=message):
            gallery.search(**kwargs)


def test_image_folder_with_locations_csv(tmp_path, locations):
    folder = tmp_path / "tiles"
    folder.mkdir()
    for loc in locations[:3]:
        shutil.copy(loc.path("satellite"), folder / f"{loc.id}.png")
    with pytest.raises(SourceError, match="locations.csv"):
        read_locations(folder, "satellite")
    lines = ["id,lat,lon"] + [f"{loc.id},{loc.lat},{loc.lon}" for loc in locations[:3]]
    (folder / "locations.csv").write_text("\n".join(lines) + "\n")
    found = read_locations(folder, "satellite")
    assert [loc.id for loc in found] == [loc.id for loc in locations[:3]]
    assert found[0].lat == pytest.approx(locations[0].lat)
    with pytest.raises(SourceError, match="no drone entries in split 'nope'"):
        read_locations(locations[0].path("satellite").parents[2] / "manifest.parquet", "drone", split="nope")
