"""Matching and non-matching satellite/query pairs from a world manifest, for evaluation and
calibration: each location's satellite image with its own query view (label True) and with
the query view of another, randomly drawn location of the same split (label False)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geobridge.records import Location
from geobridge.views import View


@dataclass(frozen=True)
class Pair:
    satellite: Path
    query: Path
    query_view: str
    label: bool
    satellite_id: str
    query_id: str


def _image(location: Location, view: View) -> Path:
    path = location.path(view)
    assert path is not None  # build_pairs uses only locations that have both views
    return path


def build_pairs(
    locations: list[Location], query_view: View | str, n_pairs: int | None = None, seed: int = 0
) -> list[Pair]:
    """Half matching, half non-matching pairs (balanced), shuffled with ``seed``; at most ``n_pairs``."""
    view = View.parse(query_view)
    if not view.is_image:
        raise ValueError(f"pairs need an image query view, not {view.value}")
    usable = [loc for loc in locations if loc.has(View.SATELLITE) and loc.has(view)]
    satellites = [_image(loc, View.SATELLITE) for loc in usable]
    queries = [_image(loc, view) for loc in usable]
    if len(usable) < 2:
        raise ValueError(
            f"need at least 2 locations with both satellite and {view.value} images, found {len(usable)}"
        )
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    for i, loc in enumerate(usable):
        j = (i + 1 + int(rng.integers(len(usable) - 1))) % len(usable)
        pairs.append(Pair(satellites[i], queries[i], view.value, True, loc.id, loc.id))
        pairs.append(Pair(satellites[i], queries[j], view.value, False, loc.id, usable[j].id))
    order = rng.permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    if n_pairs is not None:
        positives = [p for p in pairs if p.label][: (n_pairs + 1) // 2]
        negatives = [p for p in pairs if not p.label][: n_pairs // 2]
        pairs = [p for p in pairs if p in positives or p in negatives]
    return pairs
