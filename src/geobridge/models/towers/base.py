"""The interface every tower backend implements.

A tower maps raw inputs of one modality (a normalised pixel batch, or a list of strings it
tokenises itself) to pooled features of width `width`. The multi-view model adds projections
and normalisation on top; towers know nothing about views.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geobridge.models.config import TowerConfig


class TowerLoadError(RuntimeError):
    """A tower's weights or files could not be found (e.g. a hub id while offline)."""


@dataclass
class TokenOutput:
    """Token-level output of a text tower (for heads that attend over tokens, e.g. PLANET).

    pooled: (N, width) the features `forward` returns; tokens: (N, L, token_width) the last
    hidden states; attention_mask: (N, L) bool, True on real tokens, False on padding.
    """

    pooled: torch.Tensor
    tokens: torch.Tensor
    attention_mask: torch.Tensor


class Tower(nn.Module):
    """Base class: subclasses set `config` (resolved: arch, image size, mean/std filled in)."""

    config: TowerConfig

    @property
    def modality(self) -> str:
        return str(self.config.modality)

    @property
    def width(self) -> int:
        """Width of the pooled features `forward` returns."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, inputs: Any) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def token_width(self) -> int:
        """Width of the token states `forward_tokens` returns (text towers that expose them)."""
        return self.width

    def forward_tokens(self, texts: list[str]) -> TokenOutput:
        """Pooled features plus the token states they were pooled from (text towers only)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose token-level outputs")

    def blocks(self) -> list[nn.Module]:
        """The tower's repeated blocks (layers or stages), ordered input -> output."""
        raise NotImplementedError

    def head(self) -> list[nn.Module]:
        """Modules after the last block (final norm, tower projection): trainable with it."""
        return []

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters that stay trainable with the last blocks (default: those of `head()`)."""
        return [p for module in self.head() for p in module.parameters()]

    def save_assets(self, directory: Path) -> bool:
        """Write non-weight files needed to rebuild offline (tokenizer...); True if any."""
        return False


def check_image_batch(pixels: torch.Tensor) -> None:
    """Raise a clear error unless `pixels` is a float (N, 3, H, W) tensor."""
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or pixels.shape[1] != 3:
        shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise ValueError(f"image towers take a float tensor (N, 3, H, W); got {shape}")


def check_texts(texts: Any) -> list[str]:
    """Raise a clear error unless `texts` is a list of strings."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("text towers take a list of strings")
    return list(texts)
