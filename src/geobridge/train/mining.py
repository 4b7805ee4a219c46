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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geobridge.data.samplers import similarity_neighbours
from geobridge.models.embedder import EmbedOptions, encode_images, encode_texts
from geobridge.records import Location
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
    options: EmbedOptions = EmbedOptions(batch_size=64),
) -> dict[View, ViewEmbeddings]:
    """Embed ``views`` of every location with the embedding engine (eval mode, no gradients, the
    model's evaluation transforms, on the model's device).

    The model's previous mode is restored and the global random states are left as they were.
    An input shared by several items (a University-1652 building's satellite image, in each of
    its ~54 drone items) is embedded once; an unreadable image leaves its items invalid."""
    with torch.random.fork_rng(devices=[]):
        return {view: _embed_view(model, locations, view, options) for view in views}


def _embed_view(
    model: Any, locations: Sequence[Location], view: View, options: EmbedOptions
) -> ViewEmbeddings:
    inputs = [
        None if not loc.has(view) else loc.text if view is View.TEXT else loc.path(view) for loc in locations
    ]
    unique = list(dict.fromkeys(x for x in inputs if x is not None))
    if view is View.TEXT:
        texts = [x for x in unique if isinstance(x, str)]  # all of them: a text view's inputs are texts
        found, kept = encode_texts(model, texts, options, desc="mine neighbours"), list(range(len(unique)))
    else:
        encoding = encode_images(model, unique, view, options, desc="mine neighbours")
        found, kept = encoding.emb, encoding.kept
    dim = found.shape[1] if found.size else int(getattr(model, "embed_dim", 1))
    rows = np.zeros((len(unique) + 1, dim), np.float32)  # the last row: the zeros of missing inputs
    rows[kept] = found
    readable = np.zeros(len(unique) + 1, dtype=bool)
    readable[kept] = True
    row_of = {x: i for i, x in enumerate(unique)}
    index = np.array([row_of[x] if x is not None else len(unique) for x in inputs], dtype=np.int64)
    return ViewEmbeddings(emb=rows[index], valid=readable[index])


def mine_similarity_neighbours(
    model: Any,
    locations: Sequence[Location],
    query: View,
    reference: View,
    pool: int,
    options: EmbedOptions = EmbedOptions(batch_size=64),
) -> np.ndarray:
    """(N, pool) indices of each location's most similar other locations (query -> reference
    similarity with the current model; ``-1`` pads), for
    :class:`~geobridge.data.samplers.SimilarityNeighbourBatchSampler`."""
    embedded = embed_training_views(model, locations, [query, reference], options)
    return similarity_neighbours(
        embedded[query].emb,
        embedded[reference].emb,
        k=pool,
        groups=[loc.id for loc in locations],
        query_valid=embedded[query].valid,
        reference_valid=embedded[reference].valid,
    )
