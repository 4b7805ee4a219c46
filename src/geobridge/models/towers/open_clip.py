"""open_clip towers: any open_clip model name (with a `pretrained` tag when online) or a custom
architecture given as an open_clip model config dict (`embed_dim`, `vision_cfg`, `text_cfg`).

Options: ``pretrained`` (open_clip tag such as ``openai``, or a local checkpoint file: read from disk,
the tag from the Hugging Face cache or, when the hub answers, downloaded) and
``model_cfg`` (a custom architecture). The resolved architecture is kept in `arch`, so a saved
model rebuilds offline. Text uses open_clip's own tokenizer (its BPE vocabulary ships with the
package, so it works offline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geobridge.models.config import TowerConfig
from geobridge.models.registry import register_backend
from geobridge.models.towers.base import Tower, TowerLoadError, check_image_batch, check_texts
from geobridge.models.weights import local_first

_KNOWN_OPTIONS = {"pretrained", "model_cfg"}


def _build_clip(config: TowerConfig, load_weights: bool):
    import open_clip
    from open_clip.model import CLIP

    unknown = sorted(set(config.options) - _KNOWN_OPTIONS)
    if unknown:
        raise ValueError(f"open-clip tower: unknown options {unknown}; known: {sorted(_KNOWN_OPTIONS)}")
    arch: dict[str, Any] | None = config.arch or config.options.get("model_cfg")
    if arch is not None and (not load_weights or config.source is None):
        return CLIP(**arch), arch
    if config.source is None:
        raise ValueError("open-clip tower needs a source (an open_clip model name) or options.model_cfg")
    arch = open_clip.get_model_config(config.source)
    if arch is None:
        raise ValueError(f"open-clip: unknown model {config.source!r}; see open_clip.list_models()")
    tag = config.options.get("pretrained") if (load_weights and config.pretrained) else None
    device = torch.get_default_device()  # open_clip moves the model there: keep a meta-device build on meta
    if tag is None:
        model = open_clip.create_model(config.source, pretrained=None, device=device)
    else:
        hub = (open_clip.get_pretrained_cfg(config.source, str(tag)) or {}).get("hf_hub", "")
        name = f"{config.source} ({tag}" + (f", hub: {hub.rstrip('/')})" if hub else ")")
        model = local_first(
            lambda: open_clip.create_model(config.source, pretrained=tag, device=device), "open-clip", name
        )
    if not isinstance(model, CLIP):
        raise TowerLoadError(
            f"open-clip: {config.source} builds a {type(model).__name__}; only plain CLIP models are supported"
        )
    return model, arch


class OpenCLIPImageTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool) -> None:
        super().__init__()
        clip, arch = _build_clip(config, load_weights)
        self.visual = clip.visual
        size = clip.visual.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        mean = getattr(self.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
        std = getattr(self.visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
        self._width = int(arch["embed_dim"])
        self.config = config.model_copy(
            update={
                "arch": arch,
                "image_size": config.image_size or size,
                "mean": config.mean or tuple(mean),
                "std": config.std or tuple(std),
            }
        )

    @property
    def width(self) -> int:
        return self._width

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        check_image_batch(pixels)
        return self.visual(pixels)

    def blocks(self) -> list[nn.Module]:
        if hasattr(self.visual, "transformer"):
            return list(self.visual.transformer.resblocks)
        if hasattr(self.visual, "layer4"):  # ModifiedResNet
            return [self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4]
        if hasattr(self.visual, "trunk") and hasattr(self.visual.trunk, "stages"):  # timm trunk
            return list(self.visual.trunk.stages)
        raise NotImplementedError(f"open-clip: no block list for {type(self.visual).__name__}")

    def head(self) -> list[nn.Module]:
        return [
            m
            for m in (
                getattr(self.visual, "ln_post", None),
                getattr(self.visual, "attnpool", None),
                getattr(self.visual, "head", None),
            )
            if isinstance(m, nn.Module)
        ]


class OpenCLIPTextTower(Tower):
    def __init__(self, config: TowerConfig, load_weights: bool) -> None:
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer

        clip, arch = _build_clip(config, load_weights)
        # Keep only what encode_text uses: unused parameters would break DDP and waste memory.
        clip.visual = nn.Identity()
        for name in ("logit_scale", "logit_bias"):
            if getattr(clip, name, None) is not None:
                delattr(clip, name)
        self.clip = clip
        context = int(arch.get("text_cfg", {}).get("context_length", 77))
        self.tokenizer = SimpleTokenizer(context_length=context)
        self._width = int(arch["embed_dim"])
        self.config = config.model_copy(update={"arch": arch, "max_length": context})

    @property
    def width(self) -> int:
        return self._width

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(check_texts(texts)).to(self.device)
        return self.clip.encode_text(ids)

    def blocks(self) -> list[nn.Module]:
        return list(self.clip.transformer.resblocks)

    def head(self) -> list[nn.Module]:
        out: list[nn.Module] = [self.clip.ln_final]
        if isinstance(self.clip.text_projection, nn.Module):
            out.append(self.clip.text_projection)
        return out

    def head_parameters(self) -> list[nn.Parameter]:
        extra = [self.clip.text_projection] if isinstance(self.clip.text_projection, nn.Parameter) else []
        return super().head_parameters() + extra


@register_backend("open-clip")
def build_open_clip(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    if config.modality == "image":
        return OpenCLIPImageTower(config, load_weights)
    return OpenCLIPTextTower(config, load_weights)
