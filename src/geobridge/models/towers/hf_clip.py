"""Hugging Face `transformers` CLIP towers (GeoBridge's released model uses four CLIP-L/14).

`source` is a hub id (e.g. ``openai/clip-vit-large-patch14``: read from the Hugging Face cache,
downloaded only when the hub answers) or a local directory written by
``CLIPModel.save_pretrained`` (or a vision/text-only CLIP). The image tower is
``CLIPVisionModelWithProjection`` (== ``CLIPModel.get_image_features``), the text tower
``CLIPTextModelWithProjection`` (== ``get_text_features``). The architecture is kept in the
tower config (`arch`) and the tokenizer files are saved with the model, so a saved model
rebuilds offline without the original source.

Random init (``pretrained: false``, ``model.init=random``) needs no download for the ids in
``geobridge.models.archs`` (their architecture ships with the package). A random text tower whose
tokenizer is not on disk uses OpenAI CLIP's BPE vocabulary as shipped inside open_clip (the same
49,408 tokens, start 49406, end 49407), wrapped in a ``transformers.CLIPTokenizer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geobridge.models.archs import bundled_arch
from geobridge.models.config import TowerConfig
from geobridge.models.registry import register_backend
from geobridge.models.towers.base import TokenOutput, Tower, TowerLoadError, check_image_batch, check_texts
from geobridge.models.weights import hub_offline, local_first

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()


def _sub_config(source: str, modality: str) -> Any:
    """The vision or text config of `source`, with the joint projection_dim carried over."""
    from transformers import AutoConfig

    if Path(source).exists():
        try:
            config = AutoConfig.from_pretrained(source)
        except OSError as err:
            raise TowerLoadError(
                f"{source} is not a Hugging Face CLIP directory (no readable config.json): {err}"
            ) from None
    else:
        config = local_first(lambda: AutoConfig.from_pretrained(source), "hf-clip", source)
    if config.model_type == "clip":
        sub = config.vision_config if modality == "image" else config.text_config
        sub.projection_dim = config.projection_dim
        return sub
    expected = "clip_vision_model" if modality == "image" else "clip_text_model"
    if config.model_type != expected:
        raise TowerLoadError(f"{source} holds a {config.model_type!r} model, not a CLIP ({expected}) model")
    return config


def _random_config(config: TowerConfig, modality: str) -> Any:
    """The architecture of a random-init tower: its `arch`, the shipped one of its hub id, else
    the source's own config (a local directory, or the hub)."""
    from transformers import CLIPTextConfig, CLIPVisionConfig

    kind = CLIPVisionConfig if modality == "image" else CLIPTextConfig
    if config.arch is not None:
        return kind.from_dict(config.arch)
    shipped = bundled_arch(str(config.source))
    if shipped is not None:
        return kind.from_dict(shipped["vision_config" if modality == "image" else "text_config"])
    return _sub_config(str(config.source), modality)


def bundled_clip_tokenizer(max_length: int = 77) -> Any:
    """OpenAI CLIP's tokenizer built from the BPE vocabulary that ships inside open_clip (no download)."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    special = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {special.get(token, token): index for token, index in simple.encoder.items()}
    merges = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def _text_tokenizer(config: TowerConfig, pretrained: bool) -> Any:
    """The tokenizer of a text tower built from `source`: its own (disk, cache, or hub when
    pretrained); a random tower whose tokenizer is not on disk gets :func:`bundled_clip_tokenizer`."""
    from transformers import AutoTokenizer

    source = str(config.source)
    if Path(source).exists():
        try:
            return AutoTokenizer.from_pretrained(source)
        except OSError as err:
            raise TowerLoadError(f"hf-clip text tower: no tokenizer in {source}: {err}") from None
    if pretrained:
        return local_first(lambda: AutoTokenizer.from_pretrained(source), "hf-clip", source)
    try:
        with hub_offline():
            return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError):
        return bundled_clip_tokenizer()


class HFCLIPImageTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool) -> None:
        super().__init__()
        _quiet_transformers()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        if config.arch is not None and not load_weights:
            model = CLIPVisionModelWithProjection(CLIPVisionConfig.from_dict(config.arch))
        else:
            if config.source is None:
                raise ValueError("hf-clip tower needs a source (hub id or local directory)")
            if config.pretrained:
                sub = _sub_config(config.source, "image")
                model = _pretrained(CLIPVisionModelWithProjection, config.source, sub)
            else:
                model = CLIPVisionModelWithProjection(_random_config(config, "image"))
        self.model = model
        size = model.config.image_size
        assert isinstance(size, int)  # CLIP's vision config: the side of its square input
        self.config = config.model_copy(
            update={
                "arch": model.config.to_dict(),
                "image_size": config.image_size or (size, size),
                "mean": config.mean or OPENAI_CLIP_MEAN,
                "std": config.std or OPENAI_CLIP_STD,
            }
        )

    @property
    def width(self) -> int:
        return int(self.model.config.projection_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        check_image_batch(pixels)
        return self.model(
            pixel_values=pixels,
            interpolate_pos_encoding=tuple(pixels.shape[2:]) != (self.model.config.image_size,) * 2,
        ).image_embeds

    def blocks(self) -> list[nn.Module]:
        return list(self.model.vision_model.encoder.layers)

    def head(self) -> list[nn.Module]:
        return [self.model.vision_model.post_layernorm, self.model.visual_projection]


class HFCLIPTextTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool, assets: Path | None) -> None:
        super().__init__()
        _quiet_transformers()
        from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModelWithProjection

        if config.arch is not None and not load_weights:
            if assets is None:
                raise TowerLoadError("hf-clip text tower: rebuilding needs the saved tokenizer directory")
            model = CLIPTextModelWithProjection(CLIPTextConfig.from_dict(config.arch))
            tokenizer_dir: str | None = str(assets)
        else:
            if config.source is None:
                raise ValueError("hf-clip tower needs a source (hub id or local directory)")
            if config.pretrained:
                sub = _sub_config(config.source, "text")
                model = _pretrained(CLIPTextModelWithProjection, config.source, sub)
            else:
                model = CLIPTextModelWithProjection(_random_config(config, "text"))
            tokenizer_dir = None
        if tokenizer_dir is None:
            self.tokenizer = _text_tokenizer(config, bool(config.pretrained))
        else:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
            except OSError as err:
                raise TowerLoadError(f"hf-clip text tower: no tokenizer in {tokenizer_dir}: {err}") from None
        self.model = model
        self.config = config.model_copy(
            update={
                "arch": model.config.to_dict(),
                "max_length": config.max_length or int(model.config.max_position_embeddings),
            }
        )

    @property
    def width(self) -> int:
        dim = self.model.config.projection_dim
        assert dim is not None  # CLIP's text config always has one
        return int(dim)

    def forward(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            check_texts(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        return self.model(**batch).text_embeds

    @property
    def token_width(self) -> int:
        return int(self.model.config.hidden_size)

    def forward_tokens(self, texts: list[str]) -> TokenOutput:
        batch = self.tokenizer(
            check_texts(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        out = self.model(**batch)
        return TokenOutput(
            pooled=out.text_embeds,
            tokens=out.last_hidden_state,
            attention_mask=batch["attention_mask"].bool(),
        )

    def blocks(self) -> list[nn.Module]:
        return list(self.model.text_model.encoder.layers)

    def head(self) -> list[nn.Module]:
        return [self.model.text_model.final_layer_norm, self.model.text_projection]

    def save_assets(self, directory: Path) -> bool:
        self.tokenizer.save_pretrained(str(directory))
        return True


def _pretrained(kind: Any, source: str, sub: Any) -> Any:
    """``kind.from_pretrained`` from a local directory, or local-first from the hub."""
    if Path(source).exists():
        return kind.from_pretrained(source, config=sub)
    return local_first(lambda: kind.from_pretrained(source, config=sub), "hf-clip", source)


@register_backend("hf-clip")
def build_hf_clip(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    if config.modality == "image":
        return HFCLIPImageTower(config, load_weights)
    return HFCLIPTextTower(config, load_weights, assets)
