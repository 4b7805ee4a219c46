"""Batches on their way into the model: move to a device, slice, and encode every view.

A batch is the dict made by :func:`geobridge.data.manifest.collate`. These helpers are shared
by the plain step, gradient accumulation and gradient caching so all three see the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geobridge.views import View


def batch_size_of(batch: dict[Any, Any]) -> int:
    return int(batch["index"].shape[0])


def present_views(batch: dict[Any, Any], views: Sequence[View]) -> list[View]:
    """The requested views that this batch holds for at least one location."""
    out = []
    for view in views:
        value = batch.get(view)
        mask = batch["mask"].get(view)
        if value is None or mask is None or not bool(mask.any()):
            continue
        out.append(view)
    return out


def slice_batch(batch: dict[Any, Any], start: int, stop: int) -> dict[Any, Any]:
    """Rows ``start:stop`` of every field of a batch (tensors, lists and the mask dict)."""
    out: dict[Any, Any] = {}
    for key, value in batch.items():
        if key == "mask":
            out["mask"] = {v: m[start:stop] for v, m in value.items()}
        elif value is None:
            out[key] = None
        else:
            out[key] = value[start:stop]
    return out


def masks_on(batch: dict[Any, Any], views: Sequence[View], device: torch.device) -> dict[View, torch.Tensor]:
    return {view: batch["mask"][view].to(device) for view in views}


def encode_views(
    model: Any, batch: dict[Any, Any], views: Sequence[View], device: torch.device
) -> dict[View, torch.Tensor]:
    """``model.encode`` every view of the batch: image tensors go to ``device``, text stays a list."""
    embeddings: dict[View, torch.Tensor] = {}
    for view in views:
        inputs = batch[view]
        if view is not View.TEXT:
            inputs = inputs.to(device, non_blocking=True)
        embeddings[view] = model.encode(view, inputs)
    return embeddings
