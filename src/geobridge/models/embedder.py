"""The embedding engine: run a model over image files (or PIL images) and texts, fast, on its device.

Every place that embeds a set of inputs (validation, evaluation, mining, galleries, locate, serve,
explain) comes through here, so they share one behaviour:

* a ``torch.utils.data.DataLoader`` decodes and transforms images in worker processes while the
  model runs (pinned memory when the model is on CUDA), in input order;
* inputs are moved to the model's device, and run under autocast in the chosen precision
  (:mod:`geobridge.models.device`); outputs come back as float32 L2-normalised numpy rows;
* ``tta="flip"`` averages each image's embedding with its mirror image's;
* files are opened under the image policy (:mod:`geobridge.images`: pixel budget, large JPEGs
  decoded at a reduced scale); an unreadable file is skipped and named in one
  :class:`UnreadableImageWarning` per call; the result says which inputs were embedded
  (``kept``) and why the others were not (``skipped``);
* the model runs in eval mode under ``no_grad`` (its mode is restored afterwards) and the global
  random states are left untouched (the loader draws its seed from its own generator).

It lives in ``models`` so that ``train`` (mining) and ``retrieval``/``evaluation`` share it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from geobridge.images import open_image
from geobridge.models.device import autocast, model_device, resolve_precision
from geobridge.views import View

TTA_MODES: tuple[str, ...] = ("flip",)
MAX_AUTO_WORKERS = 8

ImageInput = Any  # a path (str or Path) or a PIL image


class UnreadableImageWarning(UserWarning):
    """An image file could not be opened or decoded and was left out."""


@dataclass(frozen=True)
class EmbedOptions:
    """How to embed: batch size, loader workers (None: as many as helps), precision, TTA, progress."""

    batch_size: int = 32
    num_workers: int | None = None
    precision: str = "auto"
    tta: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.tta is not None and self.tta not in TTA_MODES:
            raise ValueError(
                f"unknown test-time augmentation {self.tta!r}: expected one of {', '.join(TTA_MODES)} or None"
            )

    def workers_for(self, n_items: int, device: torch.device = torch.device("cuda")) -> int:
        """Loader workers for ``n_items`` inputs: none for a single batch (starting workers would
        cost more than they save); for a model on the CPU, the cores torch's threads leave free
        (a worker on a core the forward uses only slows it); else one per spare CPU core, up to
        :data:`MAX_AUTO_WORKERS`."""
        if self.num_workers is not None:
            return self.num_workers
        if n_items <= self.batch_size:
            return 0
        spare = (os.cpu_count() or 1) - (torch.get_num_threads() if device.type == "cpu" else 1)
        return max(0, min(MAX_AUTO_WORKERS, spare))


@dataclass
class ImageEncoding:
    """Embeddings of the readable images among the inputs, and which ones were skipped."""

    emb: np.ndarray  # (len(kept), D) float32
    kept: list[int]  # positions in the input list of the rows of ``emb``
    skipped: dict[str, str] = field(default_factory=dict)  # input name -> reason


def input_name(image: ImageInput, position: int) -> str:
    """How an input is named in warnings and errors: its path, else the PIL file name or position."""
    if isinstance(image, (str, Path)):
        return str(image)
    return str(getattr(image, "filename", "") or f"image {position}")


class _ImageInputs(Dataset):
    """Decoded, transformed inputs; a failure is returned (not raised) so one bad file skips alone."""

    def __init__(self, images: Sequence[ImageInput], transform: Callable[[Any], torch.Tensor]) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        image = self.images[index]
        try:
            pil = open_image(image) if isinstance(image, (str, Path)) else image.convert("RGB")
            return index, self.transform(pil), None
        except Exception as err:  # any decoding failure: the input is skipped, with the reason
            return index, None, f"{type(err).__name__}: {err}"


@dataclass
class _Batch:
    positions: list[int]
    pixels: torch.Tensor | None
    failed: dict[int, str]

    def pin_memory(self) -> _Batch:  # called by the loader's pinning thread
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


def _collate(samples: list[tuple[int, torch.Tensor | None, str | None]]) -> _Batch:
    good = [(i, t) for i, t, _ in samples if t is not None]
    return _Batch(
        positions=[i for i, _ in good],
        pixels=torch.stack([t for _, t in good]) if good else None,
        failed={i: str(reason) for i, t, reason in samples if t is None},
    )


def encode_images(
    model: Any,
    images: Sequence[ImageInput],
    view: View | str,
    options: EmbedOptions = EmbedOptions(),
    desc: str | None = None,
    warn: bool = True,
) -> ImageEncoding:
    """Embed image files or PIL images as ``view``; unreadable ones are skipped and named in one
    warning (``warn=False``: only in the result, for callers that refuse them, e.g. queries)."""
    view = View.parse(view)
    if not view.is_image:
        raise ValueError("encode_images needs an image view; use encode_texts for text")
    device = model_device(model)
    precision = resolve_precision(options.precision, device)
    images = list(images)
    workers = options.workers_for(len(images), device)
    loader = DataLoader(
        _ImageInputs(images, model.image_transform(view)),
        batch_size=options.batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        generator=torch.Generator(),
        prefetch_factor=4 if workers else None,
    )
    chunks: list[np.ndarray] = []
    kept: list[int] = []
    skipped: dict[str, str] = {}
    with inference(model), _progress(len(images), desc or f"embed {view.value}", options.progress) as bar:
        for batch in loader:
            for position, reason in batch.failed.items():
                skipped[input_name(images[position], position)] = reason
            if batch.pixels is not None:
                chunks.append(to_host(encode_pixels(model, view, batch.pixels, options.tta, precision)))
                kept.extend(batch.positions)
            bar.update(len(batch.positions) + len(batch.failed))
    if skipped and warn:
        names = "; ".join(f"{name} ({reason})" for name, reason in skipped.items())
        warnings.warn(
            f"skipped {len(skipped)} unreadable image(s): {names}", UnreadableImageWarning, stacklevel=2
        )
    return ImageEncoding(emb=_stack(chunks, model), kept=kept, skipped=skipped)


def encode_texts(
    model: Any, texts: Sequence[str], options: EmbedOptions = EmbedOptions(), desc: str = "embed text"
) -> np.ndarray:
    """Embed descriptions with the model's text tower (its towers move the tokens to its device)."""
    if not getattr(model, "has_text", True):
        raise ValueError("this model has no text tower, so it cannot embed text queries")
    texts = [str(t) for t in texts]
    precision = resolve_precision(options.precision, model_device(model))
    chunks: list[np.ndarray] = []
    with inference(model), _progress(len(texts), desc, options.progress) as bar:
        for start in range(0, len(texts), options.batch_size):
            batch = texts[start : start + options.batch_size]
            with autocast(model_device(model), precision):
                chunks.append(to_host(model.encode(View.TEXT, batch)))
            bar.update(len(batch))
    return _stack(chunks, model)


def encode_pixels(
    model: Any, view: View, pixels: torch.Tensor, tta: str | None = None, precision: str = "fp32"
) -> torch.Tensor:
    """Embed a transformed batch (N,3,H,W) on the model's device under autocast; float32 rows on
    that device. ``tta='flip'`` averages with the mirror image. ``precision`` is resolved."""
    device = model_device(model)
    pixels = pixels.to(device, non_blocking=True)
    with torch.no_grad(), autocast(device, precision):
        emb = model.encode(view, pixels).float()
        if tta == "flip":
            mirrored = model.encode(view, torch.flip(pixels, dims=[-1])).float()
            emb = torch.nn.functional.normalize(emb + mirrored, dim=-1)
    return emb


def to_host(emb: torch.Tensor) -> np.ndarray:
    """Device rows -> float32 numpy rows."""
    return emb.detach().float().cpu().numpy().astype(np.float32, copy=False)


def _stack(chunks: list[np.ndarray], model: Any) -> np.ndarray:
    if chunks:
        return np.ascontiguousarray(np.concatenate(chunks, axis=0), dtype=np.float32)
    return np.zeros((0, int(getattr(model, "embed_dim", 0))), np.float32)


class inference:
    """Eval mode + no_grad for the duration; the model's training flag is restored after."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.was_training = False
        self.no_grad = torch.no_grad()

    def __enter__(self) -> None:
        self.was_training = bool(getattr(self.model, "training", False))
        if hasattr(self.model, "eval"):
            self.model.eval()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        if self.was_training and hasattr(self.model, "train"):
            self.model.train(True)


class _progress:
    """A tqdm bar that can be switched off."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, desc=desc, unit="item", disable=not enabled, leave=False, dynamic_ncols=True
        )

    def __enter__(self) -> Any:
        return self.bar

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
