"""Location records, manifests, embeddings files and atomic output."""

import numpy as np
import pytest

from geobridge.atomic import atomic_directory, atomic_path, atomic_write_text
from geobridge.embeddings import Embeddings, EmbeddingsFileError
from geobridge.records import Location, ManifestError, by_split, read_manifest, write_manifest
from geobridge.views import View


def test_manifest_round_trip_keeps_missing_views_and_relative_paths(tmp_path):
    img = tmp_path / "train" / "drone" / "a.png"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"x")
    locs = [
        Location(
            "a", 60.1, 24.9, "train", "north", "a river", {"drone": img, "street": None}, {"scale_m": 80}
        ),
        Location("b", 60.2, 24.8, "test", "south", "", {"drone": None}),
    ]
    path = write_manifest(locs, tmp_path / "manifest.parquet")
    back = read_manifest(path)
    assert [loc.id for loc in back] == ["a", "b"]
    assert back[0].path(View.DRONE) == img.resolve()
    assert back[0].path("street") is None and not back[1].has(View.DRONE)
    assert back[0].views == [View.DRONE, View.TEXT] and back[1].views == []
    assert back[0].extra["scale_m"] == 80
    assert [loc.id for loc in read_manifest(tmp_path, split="test")] == ["b"]
    assert set(by_split(back)) == {"train", "test"}
    import pyarrow.parquet as pq

    assert pq.read_table(path).column("drone").to_pylist()[0] == "train/drone/a.png"


def test_missing_manifest_says_what_to_do(tmp_path):
    with pytest.raises(ManifestError, match="geobridge world"):
        read_manifest(tmp_path / "nope.parquet")


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "gallery"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError):
        with atomic_directory(target) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_directory(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery"]


def test_embeddings_round_trip_and_errors(tmp_path):
    e = Embeddings(np.eye(3, 4, dtype=np.float32), ["x", "y", "z"], lat=[1, 2, 3], lon=[4, 5, 6])
    path = e.save(tmp_path / "e.npz")
    back = Embeddings.load(path)
    assert back.dim == 4 and list(back.ids) == ["x", "y", "z"] and back.has_coordinates
    np.testing.assert_array_equal(back.emb, e.emb)
    np.savez(tmp_path / "bad.npz", emb=np.zeros((2, 3), np.float32))
    with pytest.raises(EmbeddingsFileError, match="'ids'"):
        Embeddings.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "empty.npz", emb=np.zeros((0, 3), np.float32), ids=np.array([], dtype=str))
    with pytest.raises(EmbeddingsFileError, match="no embeddings"):
        Embeddings.load(tmp_path / "empty.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EmbeddingsFileError, match="cannot read"):
        Embeddings.load(tmp_path / "junk.npz")
    with pytest.raises(EmbeddingsFileError, match="2 ids"):
        Embeddings(np.zeros((3, 2)), ["a", "b"])
