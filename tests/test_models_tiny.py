"""MultiViewModel with the tiny built-in towers: encoding, sharing, save/load, transforms,
freezing, configs and presets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from geobridge.models import (
    ModelConfig,
    MultiViewModel,
    TowerLoadError,
    create_model,
    list_presets,
    load_model,
)
from geobridge.views import View


def _tiny_config(**changes) -> ModelConfig:
    cnn = {"backend": "tiny-cnn", "image_size": 32, "options": {"widths": [8, 16, 24]}}
    data = {
        "name": "t",
        "embed_dim": 16,
        "towers": {
            "aerial": cnn,
            "street": {
                "backend": "tiny-vit",
                "image_size": [16, 32],
                "options": {"width": 16, "depth": 2, "heads": 2, "patch_size": 8},
            },
            "text": {
                "backend": "tiny-text",
                "options": {"width": 16, "depth": 2, "heads": 2, "vocab_size": 512},
            },
        },
        "image_towers": {"drone": "aerial", "satellite": "aerial", "street": "street"},
        "text_tower": "text",
    }
    data.update(changes)
    return ModelConfig.model_validate(data)


@pytest.fixture(scope="module")
def model() -> MultiViewModel:
    torch.manual_seed(0)
    return MultiViewModel(_tiny_config()).eval()


def test_encode_shapes_and_unit_norm(model: MultiViewModel) -> None:
    z_d = model.encode(View.DRONE, torch.randn(3, 3, 32, 32))
    z_p = model.encode("street", torch.randn(2, 3, 16, 32))
    z_t = model.encode_text(["a bridge over the river", "a park", "a wide road"])
    assert z_d.shape == (3, 16) and z_p.shape == (2, 16) and z_t.shape == (3, 16)
    for z in (z_d, z_p, z_t):
        torch.testing.assert_close(z.norm(dim=1), torch.ones(z.shape[0]))
    assert (
        model.views == [View.DRONE, View.SATELLITE, View.STREET] and model.has_text and model.embed_dim == 16
    )


def test_text_tower_ignores_padding_and_tells_texts_apart(model: MultiViewModel) -> None:
    alone = model.encode_text(["river"])
    padded = model.encode_text(["river", "a very long sentence about roads and buildings and parks"])
    torch.testing.assert_close(alone[0], padded[0], rtol=1e-4, atol=1e-5)
    assert (padded[0] - padded[1]).abs().max() > 1e-3


def test_shared_towers_really_share_parameters(model: MultiViewModel) -> None:
    assert model.tower(View.DRONE) is model.tower(View.SATELLITE)
    assert model.tower(View.DRONE) is not model.tower(View.STREET)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.encode("drone", x), model.encode("satellite", x))
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("towers.drone") or n.startswith("towers.satellite") for n in names)
    # a gradient through drone lands in the same tensors satellite uses
    model.zero_grad()
    model.encode("satellite", x).sum().backward()
    assert model.tower("drone").stem[0].weight.grad is not None
    model.zero_grad()


def test_projection_modes() -> None:
    auto = MultiViewModel(_tiny_config(embed_dim=24))  # aerial width 24 -> no projection there
    assert isinstance(auto.projections["aerial"], torch.nn.Identity)
    assert isinstance(auto.projections["street"], torch.nn.Linear)
    always = MultiViewModel(_tiny_config(embed_dim=24, projection="always"))
    assert isinstance(always.projections["aerial"], torch.nn.Linear)
    with pytest.raises(ValueError, match="width 16 but embed_dim is 24"):
        MultiViewModel(_tiny_config(embed_dim=24, projection="none"))


def test_logit_scale_init_and_clamp(model: MultiViewModel) -> None:
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert model.logit_scale_value().item() == pytest.approx(1 / 0.07, rel=1e-5)
    other = MultiViewModel(_tiny_config(logit_scale_init=math.log(1000.0)))
    assert other.logit_scale_value().item() == pytest.approx(100.0)


def test_save_and_load_give_identical_outputs(model: MultiViewModel, tmp_path: Path) -> None:
    with torch.no_grad():
        model.logit_scale.fill_(2.5)
    saved = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    assert not list(tmp_path.glob(".*tmp"))  # no temp folder left behind
    loaded = load_model(saved).eval()
    x, xp = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 32)
    texts = ["north of the bridge", "a lake"]
    assert torch.equal(model.encode("drone", x), loaded.encode("drone", x))
    assert torch.equal(model.encode("street", xp), loaded.encode("street", xp))
    assert torch.equal(model.encode_text(texts), loaded.encode_text(texts))
    assert loaded.logit_scale.item() == 2.5
    assert loaded.tower("drone") is loaded.tower("satellite")
    # create_model accepts the saved directory too
    assert torch.equal(create_model(saved).eval().encode("drone", x), loaded.encode("drone", x))


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing|config.json is missing"):
        load_model(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text(
        json.dumps({"embed_dim": 4, "towers": {}, "image_towers": {}, "colour": 1})
    )
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="colour"):
        load_model(tmp_path / "bad")


def test_unknown_keys_and_bad_mappings_are_errors() -> None:
    with pytest.raises(ValueError, match="embedding_dim"):
        _tiny_config(embedding_dim=3)
    with pytest.raises(ValueError, match="not in towers"):
        _tiny_config(image_towers={"drone": "nope"})
    with pytest.raises(ValueError, match="text tower"):
        _tiny_config(image_towers={"drone": "text", "satellite": "aerial", "street": "street"})
    with pytest.raises(ValueError, match="widths2"):
        MultiViewModel(
            _tiny_config(
                towers={
                    **_tiny_config().model_dump()["towers"],
                    "aerial": {"backend": "tiny-cnn", "options": {"widths2": [1]}},
                }
            )
        )


def test_config_loads_from_yaml(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(_tiny_config().to_json_dict()))
    model = create_model(path, embed_dim=8)
    assert model.embed_dim == 8 and model.encode("drone", torch.randn(1, 3, 32, 32)).shape == (1, 8)
    with pytest.raises(ValueError, match="unknown model config field"):
        create_model(path, embed=8)


def test_image_transform_resizes_and_normalises(model: MultiViewModel) -> None:
    gray = Image.new("L", (50, 70), color=128)
    x = model.image_transform("street")(gray)
    assert x.shape == (3, 16, 32)
    mean, std = model.tower("street").config.mean, model.tower("street").config.std
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(mean, std)])
    torch.testing.assert_close(x.mean(dim=(1, 2)), expected, rtol=1e-3, atol=1e-3)
    assert model.image_transform("drone", train=True)(Image.new("RGBA", (40, 40))).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="no tower for view 'map'"):
        model.image_transform("map")


def test_freeze_all_but_last(model: MultiViewModel) -> None:
    assert [len(model.tower_blocks(v)) for v in ("drone", "street", "text")] == [2, 2, 2]
    model.freeze_all_but_last(1)
    try:
        for view in ("drone", "street", "text"):
            blocks = model.tower_blocks(view)
            assert all(not p.requires_grad for p in blocks[0].parameters())
            assert all(p.requires_grad for p in blocks[-1].parameters())
        assert not model.tower("drone").stem[0].weight.requires_grad
        assert not model.tower("street").patch_embed.weight.requires_grad
        assert model.logit_scale.requires_grad
        assert all(p.requires_grad for p in model.projections.parameters())
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert "towers.text.token_embed.weight" not in trainable and "towers.text.norm.weight" in trainable
    finally:
        model.freeze_all_but_last(-1)
    assert all(p.requires_grad for p in model.parameters())


def test_presets_build_offline_and_hub_ids_fail_clearly() -> None:
    assert {"tiny", "tiny-vit", "demo", "geobridge-clip-l14", "sample4geo-convnext", "gleam-c"} <= set(
        list_presets()
    )
    tiny = create_model("tiny").eval()
    assert set(tiny.views) == {View.DRONE, View.STREET, View.SATELLITE, View.MAP}
    assert tiny.encode("street", torch.randn(1, 3, 64, 128)).shape == (1, tiny.embed_dim)
    subset = create_model("tiny", views=["drone", "satellite"])
    assert (
        subset.views == [View.DRONE, View.SATELLITE]
        and not subset.has_text
        and set(subset.towers) == {"drone", "satellite"}
    )
    with pytest.raises(ValueError, match="no tower for \\['ground'\\]"):
        create_model("tiny", views=["ground"])
    with pytest.raises(TowerLoadError, match="are not on this machine.*local directory"):
        create_model("someone/clip-that-is-not-here")
    with pytest.raises(ValueError, match="unknown model 'nonsense'"):
        create_model("nonsense")


def test_circular_width_makes_the_cnn_invariant_to_a_panorama_roll() -> None:
    """With ``circular_width`` a horizontal roll by a multiple of the total stride (here 2**2 = 4 px)
    gives the same feature, and a roll by any amount of a smooth panorama nearly so; with zero
    padding the seam moves with the roll and the feature changes."""
    from geobridge.models.config import TowerConfig
    from geobridge.models.towers.tiny import TinyCNN

    torch.manual_seed(0)
    coarse = torch.randn(2, 3, 4, 16)  # smooth, seamless panorama: coarse noise upsampled around the circle
    pano = torch.nn.functional.interpolate(
        torch.cat([coarse, coarse[..., :1]], dim=3), size=(16, 65), mode="bilinear", align_corners=True
    )[..., :64]
    features = {}
    for circular in (True, False):
        torch.manual_seed(1)
        tower = TinyCNN(
            TowerConfig(
                backend="tiny-cnn",
                image_size=[16, 64],
                options={"widths": [8, 16, 24], "circular_width": circular},
            )
        ).eval()
        with torch.no_grad():
            features[circular] = [tower(torch.roll(pano, shift, dims=3)) for shift in (0, 12, 7)]
    base, by_stride, by_any = features[True]
    torch.testing.assert_close(by_stride, base, atol=1e-5, rtol=1e-5)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(by_any, base).min() > 0.98
    plain_base, plain_by_stride, _ = features[False]
    assert (plain_by_stride - plain_base).abs().max() > 1e-3
