"""Embeddings of images, texts and the locations of a dataset, through the embedding engine.

Like sentence-transformers' ``encode``: inputs go through the model in batches (see
:mod:`geobridge.models.embedder` for the loader, device, precision and unreadable-file policy),
and the output is a float32 array of L2-normalised rows. ``embed_locations`` adds the ids,
coordinates and paths of what was embedded.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.embeddings import Embeddings
from geobridge.models.embedder import EmbedOptions, UnreadableImageWarning, encode_images, encode_texts
from geobridge.records import Location
from geobridge.views import View

__all__ = ["UnreadableImageWarning", "embed_images", "embed_locations", "embed_texts", "embeddings_of"]


def embed_images(
    model: Any,
    paths: Sequence[str | Path],
    view: View | str,
    batch_size: int = 32,
    progress: bool = True,
    tta: str | None = None,
    precision: str = "auto",
    num_workers: int | None = None,
) -> np.ndarray:
    """Embed image files as ``view``; unreadable files are skipped (with a warning)."""
    options = EmbedOptions(
        batch_size=batch_size, num_workers=num_workers, precision=precision, tta=tta, progress=progress
    )
    return encode_images(model, paths, view, options).emb


def embed_texts(
    model: Any, texts: Sequence[str], batch_size: int = 64, progress: bool = True, precision: str = "auto"
) -> np.ndarray:
    """Embed descriptions with the model's text tower."""
    options = EmbedOptions(batch_size=batch_size, precision=precision, progress=progress)
    return encode_texts(model, texts, options)


def embed_locations(
    model: Any,
    locations: Sequence[Location],
    view: View | str,
    options: EmbedOptions | None = None,
    **option_values: Any,
) -> Embeddings:
    """Embed each location's ``view`` (an image, or its text for ``View.TEXT``).

    ``options`` (or its fields as keywords: ``batch_size``, ``progress``, ``tta``, ``precision``,
    ``num_workers``) say how. Locations without that view, and those whose image cannot be read,
    are left out (with a warning); the result carries the ids, coordinates and paths of the rest.
    """
    options = options or EmbedOptions(**option_values)
    view = View.parse(view)
    present = [loc for loc in locations if loc.has(view)]
    missing = len(locations) - len(present)
    if missing:
        warnings.warn(
            f"{missing} of {len(locations)} locations have no {view.value} view and are left out",
            stacklevel=2,
        )
    if view is View.TEXT:
        texts = [loc.text for loc in present]
        return embeddings_of(present, view, encode_texts(model, texts, options), options)
    encoding = encode_images(model, [loc.path(view) for loc in present], view, options)
    return embeddings_of([present[i] for i in encoding.kept], view, encoding.emb, options)


def embeddings_of(kept: Sequence[Location], view: View, emb: np.ndarray, options: EmbedOptions) -> Embeddings:
    """:class:`Embeddings` of ``kept`` locations' ``view`` from their rows ``emb``."""
    paths = None if view is View.TEXT else np.array([str(loc.path(view)) for loc in kept], dtype=str)
    return Embeddings(
        emb=emb,
        ids=np.array([loc.id for loc in kept], dtype=str),
        lat=np.array([loc.lat for loc in kept], dtype=np.float64),
        lon=np.array([loc.lon for loc in kept], dtype=np.float64),
        paths=paths,
        meta={"view": view.value, "tta": options.tta},
    )
