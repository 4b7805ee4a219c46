"""A gallery names its image root and stores paths relative to it: copied to another place (with
its images, or without them while the originals stay), it still finds every image, and
``locate --json`` shows the portable relative paths. Galleries of format 1 still load."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from geobridge.cli import main
from geobridge.records import read_manifest
from geobridge.retrieval.gallery import CHECKSUM_FILE, INFO_FILE, METADATA_FILE, Gallery, file_sha256


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_world_dir):
    """A folder holding a copy of the tiny world and a gallery of its satellite images."""
    from geobridge.models import create_model

    root = tmp_path_factory.mktemp("portable") / "project"
    shutil.copytree(tiny_world_dir.parent, root / "world")
    create_model("tiny").save_pretrained(root / "model")
    assert (
        main(
            [
                "gallery",
                "build",
                "--model",
                str(root / "model"),
                "--images",
                str(root / "world"),
                "--view",
                "satellite",
                "--out",
                str(root / "gallery"),
                "--quiet",
            ]
        )
        == 0
    )
    return root


def test_paths_are_stored_relative_to_a_named_root(project):
    info = json.loads((project / "gallery" / INFO_FILE).read_text())
    assert info["format"] == 2 and info["root"] == "../world"
    assert info["root_absolute"] == str(project / "world")
    stored = pd.read_parquet(project / "gallery" / METADATA_FILE)["path"]
    assert stored.str.startswith(("train/", "val/", "test/")).all()


def test_a_copied_project_finds_its_own_images_and_locate_shows_portable_paths(project, tmp_path, capsys):
    moved = tmp_path / "elsewhere"
    shutil.copytree(project, moved)
    gallery = Gallery.load(moved / "gallery")
    assert gallery.root == (moved / "world").resolve()
    first = gallery.metadata["id"].iloc[0]
    assert gallery.path_of(first).is_file() and str(gallery.path_of(first)).startswith(str(moved))
    query = next(loc for loc in read_manifest(moved / "world") if loc.id == first).path("satellite")
    capsys.readouterr()
    assert (
        main(
            [
                "locate",
                str(query),
                "--gallery",
                str(moved / "gallery"),
                "--view",
                "satellite",
                "--k",
                "2",
                "--json",
            ]
        )
        == 0
    )
    best = json.loads(capsys.readouterr().out)[0]["matches"][0]
    assert best["id"] == first and not best["path"].startswith("/")
    assert (moved / "world" / best["path"]).is_file()


def test_a_gallery_copied_without_its_images_uses_the_original_root(project, tmp_path):
    shutil.copytree(project / "gallery", tmp_path / "alone")
    gallery = Gallery.load(tmp_path / "alone")
    assert gallery.root == project / "world" and gallery.path_of(gallery.metadata["id"].iloc[0]).is_file()


def test_a_format_1_gallery_with_absolute_paths_still_loads(project, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(project / "gallery", old)
    info = json.loads((old / INFO_FILE).read_text())
    for key in ("root", "root_absolute"):
        info.pop(key)
    info["format"] = 1
    (old / INFO_FILE).write_text(json.dumps(info))
    meta = pd.read_parquet(old / METADATA_FILE)
    meta["path"] = [str(project / "world" / p) for p in meta["path"]]
    meta.to_parquet(old / METADATA_FILE, index=False)
    sums = json.loads((old / CHECKSUM_FILE).read_text())
    sums.update({name: file_sha256(old / name) for name in (INFO_FILE, METADATA_FILE)})
    (old / CHECKSUM_FILE).write_text(json.dumps(sums))
    gallery = Gallery.load(old)
    assert gallery.root is None and str(gallery.path_of(meta["id"].iloc[0])) == meta["path"].iloc[0]
