"""Where the locations of a world dataset stand: points on roads, spread out, split by region.

A location is a road cell (major, secondary or residential street; bridges included) at least
``margin_m`` from the world's edge, so every view around it is filled with scene, and at least
``min_spacing_m`` from every other location, so two locations never show the same place.
The test split holds out one whole region (cross-area, like VIGOR); val comes from the training
regions. Which region is held out is a policy (:data:`TEST_REGION_POLICIES`): ``"random"`` draws
any region; ``"shared-style"`` draws among regions whose style family (the region name without the
``-2``, ``-3`` ... that numbers a repeated style) also occurs in a training region, so the test is
a new *area* of a kind of place seen in training, as VIGOR tests on new cities of the same kind
(train New York + Seattle, test Chicago + San Francisco) rather than on a never-seen kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from geobridge.world.model import LandCover, RoadClass, World

#: Minimum distance (m) of a location from the road's edge.
KERB_M = 2.5
#: How the held-out test region is chosen (see the module docstring).
TEST_REGION_POLICIES: tuple[str, ...] = ("random", "shared-style")


class NotEnoughRoadPoints(ValueError):
    """The world has fewer well-spaced road points than locations were asked for."""


@dataclass(frozen=True)
class SampledLocation:
    """One sampled location: its cell, coordinates, region and split."""

    index: int
    row: float
    col: float
    lat: float
    lon: float
    region: str
    split: str


@dataclass(frozen=True)
class SplitFractions:
    """Share of locations in val and test (the rest is train)."""

    val: float = 0.1
    test: float = 0.2


def road_candidates(world: World, margin_m: float) -> np.ndarray:
    """(K, 2) int array of (row, col) road cells at least ``margin_m`` from the world's edge."""
    cs = world.georef.cell_size_m
    margin = int(np.ceil(margin_m / cs))
    h, w = world.shape
    on_road = ((world.landcover == LandCover.ROAD) | (world.landcover == LandCover.BRIDGE)) & (
        (world.road_class >= RoadClass.MAJOR) & (world.road_class <= RoadClass.RESIDENTIAL)
    )
    if 2 * margin >= min(h, w):
        return np.zeros((0, 2), np.int64)
    inner = np.zeros_like(on_road)
    inner[margin : h - margin, margin : w - margin] = True
    # keep off the kerb: the spot should be well inside the carriageway
    from scipy import ndimage

    inside_road = ndimage.distance_transform_edt(on_road) * cs >= min(KERB_M, 0.5 * cs + 1.0)
    return np.argwhere(on_road & inner & inside_road)


def _spread(candidates: np.ndarray, rng: np.random.Generator, count: int, spacing_cells: float) -> np.ndarray:
    """Pick up to ``count`` candidates in random order, none closer than ``spacing_cells``.

    A hash grid with cells of the spacing keeps each acceptance test to 9 buckets.
    """
    order = rng.permutation(len(candidates))
    buckets: dict[tuple[int, int], list[int]] = {}
    chosen: list[int] = []
    s2 = spacing_cells * spacing_cells
    for i in order:
        r, c = candidates[i]
        br, bc = int(r // spacing_cells), int(c // spacing_cells)
        ok = True
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for j in buckets.get((br + dr, bc + dc), ()):
                    rr, cc = candidates[j]
                    if (rr - r) ** 2 + (cc - c) ** 2 < s2:
                        ok = False
                        break
                if not ok:
                    break
            if not ok:
                break
        if ok:
            buckets.setdefault((br, bc), []).append(int(i))
            chosen.append(int(i))
            if len(chosen) == count:
                break
    return candidates[np.array(chosen, dtype=np.int64)] if chosen else np.zeros((0, 2), np.int64)


def style_family(region_name: str) -> str:
    """The style family of a region name: ``"suburb-2"`` -> ``"suburb"``, ``"old-town"`` -> ``"old-town"``."""
    return re.sub(r"-\d+$", "", region_name)


def pick_test_region(
    world: World, candidates: np.ndarray, rng: np.random.Generator, policy: str = "random"
) -> int:
    """The held-out region, drawn from the seed among regions that hold road points.

    ``policy="shared-style"`` draws only among regions whose style family also occurs in another
    region holding road points; when no family repeats it falls back to ``"random"`` (same draw).
    """
    if policy not in TEST_REGION_POLICIES:
        raise ValueError(
            f"unknown test region policy {policy!r}: use one of {', '.join(TEST_REGION_POLICIES)}"
        )
    regions = (
        np.unique(world.region[candidates[:, 0], candidates[:, 1]]) if len(candidates) else np.array([], int)
    )
    if len(regions) < 2:
        return -1
    if policy == "shared-style":
        families = [style_family(world.region_names[int(r)]) for r in regions]
        shared = np.array(
            [r for r, f in zip(regions, families) if families.count(f) > 1], dtype=regions.dtype
        )
        if len(shared):
            regions = shared
    return int(regions[rng.integers(len(regions))])


def pick_test_regions(
    world: World, candidates: np.ndarray, rng: np.random.Generator, policy: str = "random", count: int = 1
) -> list[int]:
    """``count`` held-out regions (sorted ids; empty when the world has a single region).

    One region is :func:`pick_test_region`'s draw. Several are drawn one after another; under
    ``"shared-style"`` a region qualifies only while its style family keeps another region in
    training, and families not yet held out are preferred, so the held-out area mixes styles that
    all occur in training.
    """
    if count < 1:
        raise ValueError(f"the number of test regions must be at least 1, got {count}")
    if count == 1:
        region = pick_test_region(world, candidates, rng, policy)
        return [] if region < 0 else [region]
    if policy not in TEST_REGION_POLICIES:
        raise ValueError(
            f"unknown test region policy {policy!r}: use one of {', '.join(TEST_REGION_POLICIES)}"
        )
    regions = (
        [int(r) for r in np.unique(world.region[candidates[:, 0], candidates[:, 1]])]
        if len(candidates)
        else []
    )
    if len(regions) <= count:
        raise ValueError(
            f"cannot hold out {count} regions: the world has {len(regions)} regions with roads; "
            "hold out fewer or generate more regions"
        )
    family = {r: style_family(world.region_names[r]) for r in regions}
    held: list[int] = []
    for _ in range(count):
        pool = [r for r in regions if r not in held]
        if policy == "shared-style":
            kept = [r for r in regions if r not in held]
            shared = [r for r in pool if sum(family[q] == family[r] for q in kept) > 1]
            fresh = [r for r in shared if family[r] not in {family[h] for h in held}]
            pool = fresh or shared or pool
        held.append(pool[int(rng.integers(len(pool)))])
    return sorted(held)


def sample_locations(
    world: World,
    count: int,
    rng: np.random.Generator,
    margin_m: float = 90.0,
    min_spacing_m: float = 25.0,
    fractions: SplitFractions = SplitFractions(),
    test_region_policy: str = "random",
    test_regions: int = 1,
) -> list[SampledLocation]:
    """Sample ``count`` spread-out road locations and give each a split.

    ``round(count * fractions.test)`` locations come from one held-out region (test), the rest
    from the other regions, of which ``round(count * fractions.val)`` become val. With a single
    region the splits are drawn at random instead. ``test_region_policy`` chooses the held-out
    region (:func:`pick_test_region`). Raises :class:`NotEnoughRoadPoints` when the
    world cannot hold ``count`` locations at this spacing.
    """
    if count < 1:
        raise ValueError(f"the number of locations must be at least 1, got {count}")
    cs = world.georef.cell_size_m
    candidates = road_candidates(world, margin_m)
    if len(candidates) == 0:
        raise NotEnoughRoadPoints(
            f"the world '{world.name}' has no road more than {margin_m:.0f} m inside its edge; "
            "use a larger area"
        )
    spacing = min_spacing_m / cs
    held_regions = pick_test_regions(world, candidates, rng, test_region_policy, test_regions)
    test_region = held_regions[0] if held_regions else -1
    n_test = int(round(count * fractions.test)) if test_region >= 0 else 0
    n_val = int(round(count * fractions.val))
    if count >= 3 and test_region >= 0:
        n_test = max(n_test, 1)
        n_val = max(n_val, 1)
    n_train_val = count - n_test
    cand_region = world.region[candidates[:, 0], candidates[:, 1]]
    is_held = np.isin(cand_region, held_regions)
    held = candidates[is_held]
    rest = candidates[~is_held]
    picked_test = _spread(held, rng, n_test, spacing) if n_test else np.zeros((0, 2), np.int64)
    picked_rest = _spread(rest, rng, n_train_val, spacing)
    if len(picked_test) < n_test or len(picked_rest) < n_train_val:
        available = len(_spread(candidates, np.random.default_rng(0), len(candidates), spacing))
        raise NotEnoughRoadPoints(
            f"asked for {count} locations but the world '{world.name}' has only about {available} road points "
            f"{min_spacing_m:.0f} m apart (the held-out test region holds {len(picked_test)}); "
            "ask for fewer locations or use a larger area"
        )
    splits = ["val"] * n_val + ["train"] * (n_train_val - n_val)
    order = rng.permutation(n_train_val)
    rest_splits = [splits[i] for i in order]
    cells = np.concatenate([picked_rest, picked_test]).astype(np.float64)
    all_splits = rest_splits + ["test"] * len(picked_test)
    if test_region < 0:  # one region only: random splits
        n_random_test = int(round(count * fractions.test))
        labels = ["test"] * n_random_test + ["val"] * n_val
        labels = (labels + ["train"] * count)[:count]
        all_splits = [labels[p] for p in rng.permutation(count)]
    rows = cells[:, 0] + 0.5
    cols = cells[:, 1] + 0.5
    lat, lon = world.georef.cell_to_latlon(rows, cols)
    lat = np.atleast_1d(lat)
    lon = np.atleast_1d(lon)
    out = [
        SampledLocation(
            index=i,
            row=float(rows[i]),
            col=float(cols[i]),
            lat=float(lat[i]),
            lon=float(lon[i]),
            region=world.region_at(rows[i], cols[i]),
            split=all_splits[i],
        )
        for i in range(len(rows))
    ]
    return out
