"""``geobridge demo`` builds ``OUT/gallery/`` from the saved ``OUT/model/`` over the held-out test
locations' satellite views, and ``Gallery.load(...).search`` finds a test location in it."""

from __future__ import annotations

from pathlib import Path

import torch

from geobridge.demo import build_demo_gallery
from geobridge.models import ModelConfig, MultiViewModel
from geobridge.records import read_manifest
from geobridge.retrieval.gallery import Gallery
from geobridge.world.dataset import generate_world_dataset


def test_demo_gallery_holds_the_test_satellite_views_of_the_saved_model(tmp_path: Path) -> None:
    manifest = generate_world_dataset(
        tmp_path / "world",
        locations=12,
        seed=1,
        size=32,
        views=("drone", "street", "satellite"),
        world_size_m=600.0,
        regions=2,
        progress=False,
    )
    cnn = {"backend": "tiny-cnn", "image_size": 32, "options": {"widths": [8, 16]}}
    config = ModelConfig.model_validate(
        {
            "name": "t",
            "embed_dim": 16,
            "towers": {"aerial": cnn, "street": {**cnn, "image_size": [16, 32]}},
            "image_towers": {"drone": "aerial", "satellite": "aerial", "street": "street"},
        }
    )
    torch.manual_seed(0)
    MultiViewModel(config).eval().save_pretrained(tmp_path / "model")

    assert build_demo_gallery(tmp_path, manifest) == len(read_manifest(manifest, split="test")) > 0
    gallery = Gallery.load(tmp_path / "gallery")
    test = read_manifest(manifest, split="test")
    assert sorted(gallery.metadata["id"]) == sorted(loc.id for loc in test)
    assert gallery.info.view == "satellite"
    hit = gallery.search([test[0].paths["satellite"]], view="satellite", k=1)[0]
    assert hit.matches[0].id == test[0].id  # its own satellite view is its nearest neighbour
