"""Batched embedding of images, texts and the locations of a dataset, with a progress bar.

Like sentence-transformers' ``encode``: inputs go through the model in batches under
``torch.no_grad`` with the model in eval mode (its mode is restored afterwards), and the output
is a float32 array of L2-normalised rows. An image that cannot be read is skipped with a
warning naming it, and left out of the output.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from geobridge.embeddings import Embeddings
from geobridge.records import Location
from geobridge.views import View

if TYPE_CHECKING:  # pragma: no cover
    import torch

TTA_MODES: tuple[str, ...] = ("flip",)


class UnreadableImageWarning(UserWarning):
    """An image file could not be opened or decoded and was left out."""


@dataclass
class ImageEncoding:
    """Embeddings of the readable images among ``paths``, and which ones were skipped."""

    emb: np.ndarray  # (len(kept), D) float32
    kept: list[int]  # positions in the input list of the rows of ``emb``
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason


def embed_images(
    model: Any,
    paths: Sequence[str | Path],
    view: View | str,
    batch_size: int = 32,
    progress: bool = True,
    tta: str | None = None,
) -> np.ndarray:
    """Embed image files as ``view``; unreadable files are skipped (with a warning)."""
    return encode_image_files(model, paths, view, batch_size=batch_size, progress=progress, tta=tta).emb


def embed_texts(model: Any, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Embed descriptions with the model's text tower."""
    import torch

    texts = [str(t) for t in texts]
    _check_batch_size(batch_size)
    if not getattr(model, "has_text", True):
        raise ValueError("this model has no text tower, so it cannot embed text queries")
    chunks: list[np.ndarray] = []
    with inference(model), _progress(len(texts), "embed text", progress) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            chunks.append(_to_numpy(model.encode(View.TEXT, batch)))
            bar.update(len(batch))
    return _stack(chunks, model)


def embed_locations(
    model: Any,
    locations: Sequence[Location],
    view: View | str,
    batch_size: int = 32,
    progress: bool = True,
    tta: str | None = None,
) -> Embeddings:
    """Embed each location's ``view`` (an image, or its text for ``View.TEXT``).

    Locations without that view, and whose image cannot be read, are left out (with a warning);
    the result carries the ids, coordinates and paths of the embedded ones.
    """
    view = View.parse(view)
    present = [loc for loc in locations if loc.has(view)]
    missing = len(locations) - len(present)
    if missing:
        warnings.warn(f"{missing} of {len(locations)} locations have no {view.value} view and are left out", stacklevel=2)
    if view is View.TEXT:
        emb = embed_texts(model, [loc.text for loc in present], batch_size=max(batch_size, 1), progress=progress)
        kept = present
        paths = None
    else:
        encoding = encode_image_files(
            model, [loc.path(view) for loc in present], view, batch_size=batch_size, progress=progress, tta=tta
        )
        emb = encoding.emb
        kept = [present[i] for i in encoding.kept]
        paths = np.array([str(loc.path(view)) for loc in kept], dtype=str)
    return Embeddings(
        emb=emb,
        ids=np.array([loc.id for loc in kept], dtype=str),
        lat=np.array([loc.lat for loc in kept], dtype=np.float64),
        lon=np.array([loc.lon for loc in kept], dtype=np.float64),
        paths=paths,
        meta={"view": view.value, "tta": tta},
    )


def encode_image_files(
    model: Any,
    paths: Sequence[str | Path],
    view: View | str,
    batch_size: int = 32,
    progress: bool = True,
    tta: str | None = None,
) -> ImageEncoding:
    """Embed image files and report which were skipped; the building block of ``embed_images``."""
    view = View.parse(view)
    if not view.is_image:
        raise ValueError("embed_images needs an image view; use embed_texts for text")
    if tta is not None and tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}: expected one of {', '.join(TTA_MODES)} or None")
    _check_batch_size(batch_size)
    transform = model.image_transform(view)
    chunks: list[np.ndarray] = []
    kept: list[int] = []
    skipped: dict[str, str] = {}
    with inference(model), _progress(len(paths), f"embed {view.value}", progress) as bar:
        for start in range(0, len(paths), batch_size):
            tensors, positions = [], []
            for offset, path in enumerate(paths[start : start + batch_size]):
                try:
                    tensors.append(transform(load_rgb(path)))
                    positions.append(start + offset)
                except Exception as err:  # any decoding failure: the file is skipped
                    skipped[str(path)] = f"{type(err).__name__}: {err}"
            bar.update(min(batch_size, len(paths) - start))
            if tensors:
                chunks.append(encode_pixels(model, view, _stack_tensors(tensors), tta=tta))
                kept.extend(positions)
    if skipped:
        names = "; ".join(f"{p} ({reason})" for p, reason in skipped.items())
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {names}", UnreadableImageWarning, stacklevel=2)
    return ImageEncoding(emb=_stack(chunks, model), kept=kept, skipped=skipped)


def encode_pixels(model: Any, view: View, pixels: "torch.Tensor", tta: str | None = None) -> np.ndarray:
    """Embed an already transformed batch (N,3,H,W); ``tta='flip'`` averages with the mirror image."""
    import torch

    with torch.no_grad():
        emb = model.encode(view, pixels)
        if tta == "flip":
            emb = torch.nn.functional.normalize(emb + model.encode(view, torch.flip(pixels, dims=[-1])), dim=-1)
    return _to_numpy(emb)


def load_rgb(path: str | Path):
    """Open an image file fully decoded as RGB (truncated files raise here, not later)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def _stack_tensors(tensors: list) -> "torch.Tensor":
    import torch

    return torch.stack(tensors)


def _to_numpy(emb: "torch.Tensor") -> np.ndarray:
    return emb.detach().float().cpu().numpy().astype(np.float32, copy=False)


def _stack(chunks: list[np.ndarray], model: Any) -> np.ndarray:
    if chunks:
        return np.ascontiguousarray(np.concatenate(chunks, axis=0), dtype=np.float32)
    return np.zeros((0, int(getattr(model, "embed_dim", 0))), np.float32)


class inference:
    """Eval mode + no_grad for the duration; the model's training flag is restored after."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> None:
        import torch

        self.was_training = bool(getattr(self.model, "training", False))
        if hasattr(self.model, "eval"):
            self.model.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        if self.was_training and hasattr(self.model, "train"):
            self.model.train(True)


class _progress:
    """A tqdm bar that can be switched off."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False)

    def __enter__(self):
        return self.bar

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
