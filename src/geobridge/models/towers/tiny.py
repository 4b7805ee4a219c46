"""Tiny built-in towers for CPU training and tests: a CNN, a ViT and a text transformer.

The text tower tokenises with a hashing word tokenizer (lower-cased words -> crc32 buckets), so
it needs no vocabulary file and gives the same ids on every machine.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import torch
from torch import nn

from geobridge.models.config import IMAGENET_MEAN, IMAGENET_STD, TowerConfig
from geobridge.models.registry import register_backend
from geobridge.models.towers.base import TokenOutput, Tower, check_image_batch, check_texts


def _resolved(config: TowerConfig, defaults: dict, **fields) -> TowerConfig:
    options = {**defaults, **config.options}
    unknown = sorted(set(config.options) - set(defaults))
    if unknown:
        raise ValueError(f"{config.backend} tower: unknown options {unknown}; known: {sorted(defaults)}")
    return config.model_copy(update={"options": options, **fields})


def _encoder_layers(dim: int, heads: int, depth: int) -> nn.ModuleList:
    """The pre-norm transformer blocks shared by the tiny ViT and the tiny text tower."""
    return nn.ModuleList(
        nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        for _ in range(depth)
    )


class _AzimuthPad(nn.Module):
    """Pad by one pixel: wrapping around along the width (a panorama's azimuth), zeros along the height."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (1, 1, 0, 0), mode="circular")
        return nn.functional.pad(x, (0, 0, 1, 1))


def _conv3x3(cin: int, cout: int, stride: int, circular_width: bool) -> nn.Module:
    """A 3x3 conv keeping the size (/ stride); ``circular_width`` wraps its padding around the width."""
    if not circular_width:
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
    return nn.Sequential(_AzimuthPad(), nn.Conv2d(cin, cout, 3, stride=stride, padding=0))


class _ConvStage(nn.Module):
    """Downsample by 2, then a residual 3x3 conv."""

    def __init__(self, cin: int, cout: int, circular_width: bool = False) -> None:
        super().__init__()
        self.down = nn.Sequential(_conv3x3(cin, cout, 2, circular_width), nn.BatchNorm2d(cout), nn.GELU())
        self.res = nn.Sequential(_conv3x3(cout, cout, 1, circular_width), nn.BatchNorm2d(cout), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.res(x)


class TinyCNN(Tower):
    """Conv stem + stages that halve resolution; global average pooling. Any input size.

    Option ``circular_width`` (for 360-degree street panoramas, whose heading is arbitrary): every
    conv pads by wrapping around the width, so the feature maps roll with the input and the pooled
    feature is invariant to a horizontal roll by a multiple of the total stride
    (``2 ** (len(widths) - 1)`` px) and nearly so for any other roll.
    """

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = _resolved(
            config,
            {"widths": [16, 32, 64, 96], "circular_width": False},
            image_size=config.image_size or (64, 64),
            mean=config.mean or IMAGENET_MEAN,
            std=config.std or IMAGENET_STD,
        )
        widths = list(self.config.options["widths"])
        circular = bool(self.config.options["circular_width"])
        self.stem = nn.Sequential(_conv3x3(3, widths[0], 1, circular), nn.BatchNorm2d(widths[0]), nn.GELU())
        self.stages = nn.ModuleList(_ConvStage(a, b, circular) for a, b in zip(widths[:-1], widths[1:]))
        self.norm = nn.LayerNorm(widths[-1])
        self._width = widths[-1]

    @property
    def width(self) -> int:
        return self._width

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        check_image_batch(pixels)
        x = self.stem(pixels)
        for stage in self.stages:
            x = stage(x)
        return self.norm(x.mean(dim=(2, 3)))

    def blocks(self) -> list[nn.Module]:
        return list(self.stages)

    def head(self) -> list[nn.Module]:
        return [self.norm]


class TinyViT(Tower):
    """Patch embedding + pre-norm transformer layers; the class token is the feature."""

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        image_size = config.image_size or (64, 64)
        self.config = _resolved(
            config,
            {"width": 64, "depth": 4, "heads": 4, "patch_size": 8},
            image_size=image_size,
            mean=config.mean or IMAGENET_MEAN,
            std=config.std or IMAGENET_STD,
        )
        opts = self.config.options
        height, width = image_size
        patch = int(opts["patch_size"])
        if height % patch or width % patch:
            raise ValueError(f"tiny-vit: image_size {height}x{width} is not a multiple of patch_size {patch}")
        dim = int(opts["width"])
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + (height // patch) * (width // patch), dim) * 0.02)
        self.layers = _encoder_layers(dim, int(opts["heads"]), int(opts["depth"]))
        self.norm = nn.LayerNorm(dim)
        self._width = dim

    @property
    def width(self) -> int:
        return self._width

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        check_image_batch(pixels)
        assert self.config.image_size is not None  # resolved in __init__
        expected = tuple(self.config.image_size)
        if tuple(pixels.shape[2:]) != expected:
            raise ValueError(
                f"tiny-vit expects images of {expected[0]}x{expected[1]}; got {pixels.shape[2]}x{pixels.shape[3]} (use model.image_transform)"
            )
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.norm(x[:, 0])

    def blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def head(self) -> list[nn.Module]:
        return [self.norm]


_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


class HashingTokenizer:
    """Words -> ids by crc32 hashing into `vocab_size - 2` buckets; 0 is padding, 1 is [CLS]."""

    PAD, CLS = 0, 1

    def __init__(self, vocab_size: int, max_length: int) -> None:
        self.vocab_size = vocab_size
        self.max_length = max_length

    def ids(self, text: str) -> list[int]:
        words = _WORD.findall(text.lower())[: self.max_length - 1]
        return [self.CLS] + [2 + zlib.crc32(w.encode("utf-8")) % (self.vocab_size - 2) for w in words]

    def __call__(self, texts: list[str]) -> torch.Tensor:
        rows = [self.ids(t) for t in texts]
        length = max(len(r) for r in rows)
        out = torch.zeros(len(rows), length, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : len(row)] = torch.tensor(row)
        return out


class TinyText(Tower):
    """Token + position embeddings, pre-norm transformer layers, mean over real tokens."""

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        max_length = config.max_length or 64
        self.config = _resolved(
            config, {"width": 64, "depth": 2, "heads": 4, "vocab_size": 8192}, max_length=max_length
        )
        opts = self.config.options
        dim = int(opts["width"])
        self.tokenizer = HashingTokenizer(int(opts["vocab_size"]), int(max_length))
        self.token_embed = nn.Embedding(int(opts["vocab_size"]), dim, padding_idx=HashingTokenizer.PAD)
        self.pos_embed = nn.Parameter(torch.randn(1, int(max_length), dim) * 0.02)
        self.layers = _encoder_layers(dim, int(opts["heads"]), int(opts["depth"]))
        self.norm = nn.LayerNorm(dim)
        self._width = dim

    @property
    def width(self) -> int:
        return self._width

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.forward_tokens(texts).pooled

    def forward_tokens(self, texts: list[str]) -> TokenOutput:
        ids = self.tokenizer(check_texts(texts)).to(self.token_embed.weight.device)
        pad = ids == HashingTokenizer.PAD
        x = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        x = self.norm(x)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return TokenOutput(pooled=pooled, tokens=x, attention_mask=~pad)

    def blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def head(self) -> list[nn.Module]:
        return [self.norm]


@register_backend("tiny-cnn")
def build_tiny_cnn(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    return TinyCNN(config)


@register_backend("tiny-vit")
def build_tiny_vit(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    return TinyViT(config)


@register_backend("tiny-text")
def build_tiny_text(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    return TinyText(config)
