"""An evaluation transform as data: the exact preprocessing a released model was measured with.

A converted checkpoint records, per view, the size, resize kernel, crop and mean/std of its
authors' test script, so that `MultiViewModel.image_transform(view)` (eval) feeds the converted
weights the same tensor the original code fed the original model:

- ``pil-bicubic``: ``torchvision.transforms.Resize((h, w), BICUBIC)`` on a PIL image (GeoBridge's
  released test script; PIL always antialiases when it shrinks).
- ``cv2-linear-exact``: ``cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR_EXACT)`` on the
  uint8 RGB array, then ``(x / 255 - mean) / std`` in float32 (Sample4Geo's albumentations
  ``Resize`` + ``Normalize`` + ``ToTensorV2``; no antialiasing).

Decoding is not part of the spec: PIL and OpenCV may decode the same JPEG a few levels apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

ResizeMode = Literal["pil-bicubic", "cv2-linear-exact"]


class EvalTransform(BaseModel):
    """One view's evaluation preprocessing: resize to `size` (height, width) with `resize`, then
    an optional centre `crop` (height, width), then scale to [0, 1] and normalise by mean/std."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: tuple[int, int]
    resize: ResizeMode = "pil-bicubic"
    crop: tuple[int, int] | None = None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @field_validator("size", "crop", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) else value

    def describe(self) -> str:
        """A one-line summary, e.g. ``384x384 cv2-linear-exact, mean (0.485, ...)``."""
        crop = f", centre crop {self.crop[0]}x{self.crop[1]}" if self.crop else ""
        mean = ", ".join(f"{v:g}" for v in self.mean)
        std = ", ".join(f"{v:g}" for v in self.std)
        return f"{self.size[0]}x{self.size[1]} {self.resize}{crop}, mean ({mean}), std ({std})"


def build_eval_transform(spec: EvalTransform) -> Callable:
    """PIL image -> normalised float32 (3, H, W) tensor, exactly as `spec` says."""
    from torchvision import transforms as T

    if spec.resize == "cv2-linear-exact":
        steps: list[Callable] = [_to_rgb, _Cv2LinearExact(spec.size, spec.mean, spec.std)]
        if spec.crop is not None:
            steps.append(T.CenterCrop(spec.crop))
        return T.Compose(steps)
    steps = [_to_rgb, T.Resize(spec.size, interpolation=T.InterpolationMode.BICUBIC, antialias=True)]
    if spec.crop is not None:
        steps.append(T.CenterCrop(spec.crop))
    steps += [T.ToTensor(), T.Normalize(mean=list(spec.mean), std=list(spec.std))]
    return T.Compose(steps)


class _Cv2LinearExact:
    """cv2 INTER_LINEAR_EXACT resize of the uint8 RGB array, then albumentations' Normalize."""

    def __init__(self, size: tuple[int, int], mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.size, self.mean, self.std = size, mean, std

    def __call__(self, image: Any) -> Any:
        import cv2
        import numpy as np
        import torch

        array = np.asarray(image, dtype=np.uint8)
        resized = cv2.resize(array, (self.size[1], self.size[0]), interpolation=cv2.INTER_LINEAR_EXACT)
        mean = np.asarray(self.mean, dtype=np.float32) * 255.0
        denominator = np.reciprocal(np.asarray(self.std, dtype=np.float32) * 255.0, dtype=np.float32)
        normalised = (resized.astype(np.float32) - mean) * denominator
        return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))


def _to_rgb(image: Any) -> Any:
    """Any PIL mode (L, RGBA, P...) as RGB."""
    return image if getattr(image, "mode", "RGB") == "RGB" else image.convert("RGB")
