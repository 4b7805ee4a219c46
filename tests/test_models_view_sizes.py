"""Per-view input sizes on a shared tower (ModelConfig.view_image_sizes): Sample4Geo feeds one
ConvNeXt 384 x 384 satellite tiles and 384 x 768 or 140 x 768 panoramas."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from geobridge.models import create_model, load_model
from geobridge.models.config import ModelConfig
from geobridge.models.factory import keep_views
from geobridge.views import View


def _config(**extra) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "shared-sizes",
            "embed_dim": 16,
            "towers": {
                "shared": {"backend": "tiny-cnn", "image_size": 48, "options": {"widths": [8, 8, 16, 16]}}
            },
            "image_towers": {"drone": "shared", "street": "shared", "satellite": "shared"},
            "view_image_sizes": {"street": [32, 64], "satellite": 32},
            **extra,
        }
    )


def test_sizes_parse_per_view_and_fall_back_to_the_tower():
    config = _config()
    assert config.view_image_sizes == {View.STREET: (32, 64), View.SATELLITE: (32, 32)}
    assert config.image_size("street") == (32, 64)
    assert config.image_size(View.SATELLITE) == (32, 32)
    assert config.image_size("drone") == (48, 48)  # no entry: the tower's own size


def test_a_shared_tower_encodes_each_view_at_its_size():
    torch.manual_seed(0)
    model = create_model(_config()).eval()
    assert model.tower("street") is model.tower("satellite")
    pano = Image.new("RGB", (200, 50), (120, 60, 30))
    tile = Image.new("RGBA", (90, 90), (10, 200, 30, 255))
    for train in (False, True):
        street = model.image_transform("street", train=train)(pano)
        satellite = model.image_transform("satellite", train=train)(tile)
        drone = model.image_transform("drone", train=train)(tile)
        assert street.shape == (3, 32, 64) and satellite.shape == (3, 32, 32) and drone.shape == (3, 48, 48)
    with torch.no_grad():
        out = model({View.STREET: street[None].repeat(2, 1, 1, 1), View.SATELLITE: satellite[None]})
    assert out[View.STREET].shape == (2, 16) and out[View.SATELLITE].shape == (1, 16)
    assert torch.allclose(out[View.STREET].norm(dim=-1), torch.ones(2), atol=1e-5)


def test_save_and_load_keep_the_sizes(tmp_path: Path):
    model = create_model(_config())
    loaded = load_model(model.save_pretrained(tmp_path / "m"))
    assert loaded.config.view_image_sizes == {View.STREET: (32, 64), View.SATELLITE: (32, 32)}
    image = Image.new("RGB", (100, 40), (1, 2, 3))
    assert loaded.image_transform("street")(image).shape == (3, 32, 64)
    assert torch.equal(loaded.image_transform("street")(image), model.image_transform("street")(image))


def test_an_unknown_view_is_named_in_the_error():
    named = r"names map, which no image tower encodes \(image_towers has: drone, street, satellite\)"
    with pytest.raises(ValueError, match=named):
        _config(view_image_sizes={"map": 32})
    with pytest.raises(ValueError, match="unknown view 'streets'"):
        _config(view_image_sizes={"streets": 32})
    with pytest.raises(ValueError, match="must be positive"):
        _config(view_image_sizes={"street": [0, 64]})


def test_keeping_some_views_drops_the_other_views_sizes():
    kept = keep_views(_config(), ["drone", "satellite"])
    assert kept.view_image_sizes == {View.SATELLITE: (32, 32)}
