"""Sample4Geo's similarity neighbours, mined with the model being trained.

Sample4Geo re-mines after each evaluation: it embeds the training locations' query and
reference views with the current model and, for every location, keeps the references it is most
easily confused with; the sampler then packs those into the anchor's batch as hard negatives.
Here mining happens at the start of an epoch (the engine's natural point: the weights are
those the last evaluation saw, and an epoch's batches are drawn once, before its first step).

Mining is a pure function of the weights: the model runs in eval mode under ``no_grad`` with
deterministic (non-augmented) transforms and the caller's random states untouched, so a resumed
run that mines from the same weights gets the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from geobridge.data.manifest import ManifestDataset, collate
from geobridge.data.samplers import similarity_neighbours
from geobridge.records import Location
from geobridge.train.batches import encode_views
from geobridge.views import View


@dataclass
class ViewEmbeddings:
    """L2-normalised embeddings of one view of every location (zero rows where ``valid`` is False)."""

    emb: np.ndarray  # (N, D) float32
    valid: np.ndarray  # (N,) bool: the location has this view and its image could be read


def embed_training_views(
    model: Any,
    locations: Sequence[Location],
    views: Sequence[View],
    device: torch.device,
    batch_size: int = 64,
    autocast: Callable[[], Any] | None = None,
    progress: bool = True,
) -> dict[View, ViewEmbeddings]:
    """Embed ``views`` of every location with ``model`` in eval mode, without gradients.

    Images go through the model's evaluation transforms (no augmentation); the model's previous
    mode is restored and the global random states are left as they were. An image shared by
    several items (a University-1652 building's satellite image, in each of its ~54 drone
    items) is embedded once."""
    if len(views) > 1:
        out: dict[View, ViewEmbeddings] = {}
        for view in views:
            out.update(embed_training_views(model, locations, [view], device, batch_size, autocast, progress))
        return out
    view = views[0]
    if view.is_image:
        paths = [loc.path(view) for loc in locations]
        unique = list(dict.fromkeys(p for p in paths if p is not None))
        if len(unique) < sum(p is not None for p in paths):
            row_of = {p: i for i, p in enumerate(unique)}
            one_each = [Location(id=str(i), lat=0.0, lon=0.0, paths={view.value: p}) for i, p in enumerate(unique)]
            found = embed_training_views(model, one_each, [view], device, batch_size, autocast, progress)[view]
            rows = np.array([row_of[p] if p is not None else 0 for p in paths], dtype=np.int64)
            has = np.array([p is not None for p in paths], dtype=bool)
            emb = found.emb[rows] * has[:, None]
            return {view: ViewEmbeddings(emb=emb.astype(np.float32), valid=found.valid[rows] & has)}
    from contextlib import nullcontext

    from tqdm.auto import tqdm

    views = list(views)
    transforms = {v: model.image_transform(v, train=False) for v in views if v.is_image}
    dataset = ManifestDataset(list(locations), None, views, transforms)
    n = len(dataset)
    # per view and batch: the embeddings (None when no location of the batch has the view) and mask
    pieces: dict[View, list[tuple[np.ndarray | None, np.ndarray]]] = {v: [] for v in views}
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), \
                tqdm(total=n, desc="mine neighbours", unit="loc", disable=not progress, dynamic_ncols=True) as bar:
            for start in range(0, n, batch_size):
                batch = collate([dataset[i] for i in range(start, min(start + batch_size, n))])
                present = [v for v in views if batch.get(v) is not None and bool(batch["mask"][v].any())]
                with (autocast or nullcontext)():
                    encoded = encode_views(model, batch, present, device)
                for view in views:
                    mask = batch["mask"][view].numpy().astype(bool)
                    emb = encoded[view].float().cpu().numpy() if view in encoded else None
                    pieces[view].append((emb, mask if emb is not None else np.zeros_like(mask)))
                bar.update(len(batch["ids"]))
    finally:
        model.train(was_training)
    out: dict[View, ViewEmbeddings] = {}
    for view in views:
        dim = next((e.shape[1] for e, _ in pieces[view] if e is not None), 1)
        emb = np.concatenate([e if e is not None else np.zeros((len(m), dim), np.float32) for e, m in pieces[view]])
        mask = np.concatenate([m for _, m in pieces[view]])
        emb = emb.astype(np.float32)
        emb[~mask] = 0.0
        out[view] = ViewEmbeddings(emb=emb, valid=mask)
    return out


def mine_similarity_neighbours(
    model: Any,
    locations: Sequence[Location],
    query: View,
    reference: View,
    pool: int,
    device: torch.device,
    batch_size: int = 64,
    autocast: Callable[[], Any] | None = None,
    progress: bool = True,
) -> np.ndarray:
    """(N, pool) indices of each location's most similar other locations (query -> reference
    similarity with the current model; ``-1`` pads), for
    :class:`~geobridge.data.samplers.SimilarityNeighbourBatchSampler`."""
    embedded = embed_training_views(model, locations, [query, reference], device, batch_size=batch_size,
                                    autocast=autocast, progress=progress)
    return similarity_neighbours(
        embedded[query].emb, embedded[reference].emb, k=pool, groups=[loc.id for loc in locations],
        query_valid=embedded[query].valid, reference_valid=embedded[reference].valid,
    )
