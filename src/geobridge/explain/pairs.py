"""Matching and non-matching satellite/query pairs from a world manifest, for evaluation and
calibration: each location's satellite image with its own query view (label True) and with
the query view of another location of the same split (label False): drawn at random, or one of
its nearest neighbours on the ground (hard negatives: same district, similar layout, as in
GLEAM-X's test pairs, whose negatives are not random tiles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geobridge.geo import haversine_m
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


NEGATIVES = ("random", "nearest")


def _negative_partners(
    usable: list[Location], negatives: str, nearest_k: int, rng: np.random.Generator
) -> list[int]:
    """For each location, the index of the location whose query view becomes its negative."""
    n = len(usable)
    if negatives == "random":
        return [(i + 1 + int(rng.integers(n - 1))) % n for i in range(n)]
    lat = np.array([loc.lat for loc in usable], dtype=np.float64)
    lon = np.array([loc.lon for loc in usable], dtype=np.float64)
    metres = haversine_m(
        lat[:, None], lon[:, None], lat[None, :], lon[None, :]
    )  # n x n: a split, not a world
    np.fill_diagonal(metres, np.inf)
    k = min(nearest_k, n - 1)
    nearest = np.argsort(metres, axis=1, kind="stable")[:, :k]
    return [int(row[rng.integers(k)]) for row in nearest]


def build_pairs(
    locations: list[Location],
    query_view: View | str,
    n_pairs: int | None = None,
    seed: int = 0,
    negatives: str = "random",
    nearest_k: int = 5,
) -> list[Pair]:
    """Half matching, half non-matching pairs (balanced), shuffled with ``seed``; at most ``n_pairs``.

    ``negatives``: ``"random"`` pairs a satellite image with the query of any other location;
    ``"nearest"`` with the query of one of its ``nearest_k`` closest locations (drawn with
    ``seed``), the hard negatives a verdict must get right to be useful on the ground.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)}, got {negatives!r}")
    if nearest_k < 1:
        raise ValueError(f"nearest_k must be >= 1, got {nearest_k}")
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
    partners = _negative_partners(usable, negatives, nearest_k, rng)
    pairs: list[Pair] = []
    for i, loc in enumerate(usable):
        j = partners[i]
        pairs.append(Pair(satellites[i], queries[i], view.value, True, loc.id, loc.id))
        pairs.append(Pair(satellites[i], queries[j], view.value, False, loc.id, usable[j].id))
    order = rng.permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    if n_pairs is not None:
        kept_pos = [p for p in pairs if p.label][: (n_pairs + 1) // 2]
        kept_neg = [p for p in pairs if not p.label][: n_pairs // 2]
        pairs = [p for p in pairs if p in kept_pos or p in kept_neg]
    return pairs
