"""The image transform of a view's tower: PIL image -> normalised float tensor (3, H, W).

:meth:`geobridge.models.MultiViewModel.image_transform` builds a :class:`ViewTransform`; it
computes what torchvision's ``Compose([Resize(bicubic), ColorJitter(0.2, 0.2, 0.2) (training
only), ToTensor(), Normalize(mean, std)])`` computed before, faster, because every training
image of every step goes through it (``benchmarks/train_loader.py`` measures it against PIL's
decode + resize alone):

- :class:`PhotometricJitter` draws its parameters from torch's global RNG exactly as
  ``ColorJitter.get_params`` does (so a seeded dataset item replays, see
  :class:`geobridge.data.manifest.ManifestDataset`) and returns the same pixels, bit for bit:
  brightness and contrast are pointwise, so each is one 256-entry lookup table (built with the
  same PIL blend) applied by ``Image.point``, two in a row composed into one table.
- :class:`NormalizedTensor` replaces ToTensor + Normalize by one multiply-add on the uint8 pixels
  with mean/std folded in (equal to float rounding, < 1e-6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageStat

#: (low, high) of a jitter factor
Range = tuple[float, float]

_RAMP = Image.frombytes("L", (256, 1), bytes(range(256)))


def _blend_table(degenerate: int, factor: float) -> list[int]:
    """The 256-entry table of PIL's ``Image.blend(constant degenerate, image, factor)``: the
    very blend ImageEnhance uses, run on a 0..255 ramp, so the table reproduces it exactly."""
    return list(Image.blend(Image.new("L", (256, 1), degenerate), _RAMP, factor).getdata())


class PhotometricJitter:
    """Random brightness, contrast and saturation of an RGB PIL image, in a random order.

    The same draws from torch's global RNG as ``torchvision.transforms.ColorJitter(brightness,
    contrast, saturation)`` (``randperm(4)``, then one uniform per enabled factor) and the same
    output pixels as its PIL path (ImageEnhance blends, uint8 truncation after each step).
    Cheaper because brightness (``f * x``) and contrast (``m + f * (x - m)``, m the rounded mean
    grey level) are pointwise: each becomes a lookup table applied by ``Image.point``, and when
    contrast precedes brightness (its mean is then known up front) the two share one table.
    Saturation blends with the grey image, as ImageEnhance.Color does.
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2) -> None:
        self.ranges: tuple[Range | None, ...] = tuple(
            _factor_range(value) for value in (brightness, contrast, saturation)
        )

    def draw(self) -> tuple[list[int], list[float | None]]:
        """ColorJitter.get_params's draws: the order (0 brightness, 1 contrast, 2 saturation,
        3 hue, never enabled) and the factors (None where disabled)."""
        order = torch.randperm(4).tolist()
        factors = [None if r is None else float(torch.empty(1).uniform_(r[0], r[1])) for r in self.ranges]
        return order, factors

    def __call__(self, image: Image.Image) -> Image.Image:
        order, factors = self.draw()
        steps = [(op, factor) for op in order if op < 3 and (factor := factors[op]) is not None]
        table: list[int] | None = None  # pointwise steps not yet applied, as one table
        for op, factor in steps:
            if op == 0:  # brightness: blend with black
                table = _compose(table, _blend_table(0, factor))
            elif op == 1:  # contrast: blend with the mean grey of the image so far
                if table is not None:
                    image, table = image.point(table * 3), None
                mean = int(ImageStat.Stat(image.convert("L")).mean[0] + 0.5)
                table = _blend_table(mean, factor)
            else:  # saturation: blend with the image's grey version
                if table is not None:
                    image, table = image.point(table * 3), None
                image = Image.blend(image.convert("L").convert("RGB"), image, factor)
        return image if table is None else image.point(table * 3)


class NormalizedTensor:
    """RGB PIL image -> float tensor (3, H, W), ``(x / 255 - mean) / std`` per channel.

    ToTensor + Normalize folded into one multiply-add (scale ``1 / (255 std)``, offset
    ``-mean / std``) on the image's uint8 bands, the multiply converting to float as it goes:
    equal to float rounding (< 1e-6) at about a third of the cost.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(3, 1, 1)
        self.offset = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        out = torch.empty((3, image.height, image.width), dtype=torch.float32)
        for channel, band in enumerate(image.split()):  # planar uint8 bands: contiguous reads
            torch.mul(torch.from_numpy(np.array(band)), self.scale[channel], out=out[channel])
        return out.add_(self.offset)


class ViewTransform:
    """PIL image (any mode) -> normalised float tensor (3, H, W) for one view's tower.

    RGB, bicubic resize to ``size`` (H, W) (what torchvision's antialiased Resize does on PIL),
    then for training the photometric jitter (geometry untouched, so co-located views stay
    consistent), then ToTensor + Normalize fused. ``jitter=0`` (evaluation) is deterministic.
    """

    def __init__(
        self, size: Sequence[int], mean: Sequence[float], std: Sequence[float], jitter: float = 0.0
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.jitter = PhotometricJitter(jitter, jitter, jitter) if jitter > 0 else None
        self.to_tensor = NormalizedTensor(mean, std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.mode != "RGB":
            image = image.convert("RGB")
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        if self.jitter is not None:
            image = self.jitter(image)
        return self.to_tensor(image)

    def __repr__(self) -> str:
        return f"ViewTransform(size={self.size}, jitter={self.jitter is not None})"


def _factor_range(value: float) -> Range | None:
    """ColorJitter's range of a non-negative ``value``: [max(0, 1 - value), 1 + value]; None for 0."""
    if value < 0:
        raise ValueError(f"a jitter strength must be non-negative, got {value}")
    return None if value == 0 else (max(0.0, 1.0 - value), 1.0 + value)


def _compose(first: list[int] | None, then: list[int]) -> list[int]:
    """The table of ``then`` applied after ``first`` (``first`` None: ``then`` alone)."""
    return then if first is None else [then[v] for v in first]
