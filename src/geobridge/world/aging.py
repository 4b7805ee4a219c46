"""Imagery age: a copy of a world in which a fraction of the buildings changed, as between an
outdated satellite image and today's drone and street views.

Each changed building is, with equal odds, demolished (its cells become paved ground or grass),
re-roofed (a new roof colour) or rebuilt to another height (x0.5-0.8 or x1.3-2.0); in addition,
about a quarter as many new buildings appear on empty open ground away from roads. The input
world is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from geobridge.world.model import LandCover, World

ROOF_COLOURS = np.array(
    [
        (176, 82, 58),
        (120, 122, 128),
        (196, 196, 190),
        (62, 70, 92),
        (150, 118, 88),
        (84, 100, 80),
        (92, 94, 100),
        (200, 170, 120),
    ],
    dtype=np.uint8,
)
PAVED_COLOUR = (150, 148, 144)
GRASS_COLOUR = (112, 150, 82)
NEW_BUILDING_SHARE = 0.25
_OPEN_GROUND = (LandCover.GRASS, LandCover.PAVED, LandCover.BARE)


@dataclass(frozen=True)
class AgingReport:
    """Which building ids changed and how (ids of new buildings are above the input's maximum)."""

    removed: np.ndarray
    reroofed: np.ndarray
    reheighted: np.ndarray
    added: np.ndarray

    @property
    def changed(self) -> int:
        return len(self.removed) + len(self.reroofed) + len(self.reheighted)


def age_world(world: World, fraction: float, rng: np.random.Generator) -> World:
    """A new world where ``fraction`` of the buildings changed (see the module docstring)."""
    return age_world_with_report(world, fraction, rng)[0]


def age_world_with_report(
    world: World, fraction: float, rng: np.random.Generator
) -> tuple[World, AgingReport]:
    """:func:`age_world`, also returning what changed."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    aged = world.copy()
    ids = np.unique(world.building_id[world.building_id > 0])
    n_change = int(round(fraction * len(ids)))
    chosen = rng.permutation(ids)[:n_change]
    action = rng.integers(0, 3, size=n_change)
    removed, reroofed, reheighted = chosen[action == 0], chosen[action == 1], chosen[action == 2]

    bid = world.building_id
    if removed.size:
        mask = np.isin(bid, removed)
        to_grass = rng.random() < 0.5
        aged.landcover[mask] = LandCover.GRASS if to_grass else LandCover.PAVED
        aged.colour[mask] = GRASS_COLOUR if to_grass else PAVED_COLOUR
        aged.height[mask] = 0.0
        aged.building_id[mask] = 0
    if reroofed.size:
        _paint_per_building(aged.colour, bid, reroofed, _new_roofs(world, reroofed, rng))
    if reheighted.size:
        factor = np.where(
            rng.random(reheighted.size) < 0.5,
            rng.uniform(0.5, 0.8, reheighted.size),
            rng.uniform(1.3, 2.0, reheighted.size),
        )
        order = np.argsort(reheighted)
        mask = np.isin(bid, reheighted)
        which = order[np.searchsorted(reheighted[order], bid[mask])]
        aged.height[mask] = np.round(world.height[mask] * factor[which].astype(np.float32), 1)

    added = _add_buildings(
        aged, int(round(NEW_BUILDING_SHARE * n_change)), rng, first_id=int(ids.max(initial=0)) + 1
    )
    aged.name = f"{world.name}-aged{fraction:g}"
    aged.metadata["aged_fraction"] = fraction
    return aged, AgingReport(np.sort(removed), np.sort(reroofed), np.sort(reheighted), added)


def _new_roofs(world: World, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A palette roof colour per building, never the building's current (first-cell) colour."""
    flat_ids = world.building_id.ravel()
    order = np.argsort(flat_ids, kind="stable")
    first_cell = order[np.searchsorted(flat_ids[order], ids)]
    old = world.colour.reshape(-1, 3)[first_cell].astype(int)
    pick = rng.integers(0, len(ROOF_COLOURS), size=len(ids))
    same = np.all(ROOF_COLOURS[pick].astype(int) == old, axis=1)
    pick[same] = (pick[same] + 1) % len(ROOF_COLOURS)
    return ROOF_COLOURS[pick]


def _paint_per_building(
    colour: np.ndarray, building_id: np.ndarray, ids: np.ndarray, new_colour: np.ndarray
) -> None:
    order = np.argsort(ids)
    mask = np.isin(building_id, ids)
    which = order[np.searchsorted(ids[order], building_id[mask])]
    colour[mask] = new_colour[which]


def _add_buildings(world: World, count: int, rng: np.random.Generator, first_id: int) -> np.ndarray:
    """Place up to ``count`` rectangular buildings on open ground, 3 m or more from anything."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    cs = world.georef.cell_size_m
    margin = max(1, int(round(3.0 / cs)))
    open_ground = np.isin(world.landcover, [int(c) for c in _OPEN_GROUND]) & (world.road_class == 0)
    free = ~ndimage.binary_dilation(~open_ground, iterations=margin)
    candidates = np.argwhere(free)
    added: list[int] = []
    for _ in range(count * 20):
        if len(added) == count or len(candidates) == 0:
            break
        r, c = candidates[rng.integers(len(candidates))]
        hh, ww = (rng.uniform(8.0, 16.0, size=2) / cs).astype(int) + 1
        r0, c0 = r - hh // 2, c - ww // 2
        if r0 < 0 or c0 < 0 or r0 + hh > world.shape[0] or c0 + ww > world.shape[1]:
            continue
        if not free[r0 : r0 + hh, c0 : c0 + ww].all():
            continue
        new_id = first_id + len(added)
        box = (slice(r0, r0 + hh), slice(c0, c0 + ww))
        world.landcover[box] = LandCover.BUILDING
        world.building_id[box] = new_id
        world.height[box] = float(np.round(rng.uniform(6.0, 20.0), 1))
        world.colour[box] = ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))]
        grown = (
            slice(max(r0 - margin, 0), r0 + hh + margin),
            slice(max(c0 - margin, 0), c0 + ww + margin),
        )
        free[grown] = False
        added.append(new_id)
    return np.array(added, dtype=np.int64)
