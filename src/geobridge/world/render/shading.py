"""Light and surface appearance shared by the renderers: season tint of the surface colour, sun
shadows cast by the height field, Lambert lighting, facade colours and windows, and the sky.

Everything here is vectorised over arbitrary array shapes; nothing loops over pixels.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from geobridge.world.model import LandCover, World
from geobridge.world.render.cache import cached
from geobridge.world.render.heightfield import HeightPyramid
from geobridge.world.render.raster import CellWindow
from geobridge.world.render.settings import RenderSettings

SNOW = (236.0, 240.0, 245.0)
# Per season: land-cover class -> (blend weight, target colour) applied to the top-down colour.
_SEASON_TINTS: dict[str, dict[LandCover, tuple[float, tuple[float, float, float]]]] = {
    "spring": {
        LandCover.GRASS: (0.30, (140.0, 195.0, 95.0)),
        LandCover.PARK: (0.30, (135.0, 200.0, 95.0)),
        LandCover.TREE: (0.25, (120.0, 180.0, 90.0)),
    },
    "summer": {},
    "autumn": {
        LandCover.GRASS: (0.45, (170.0, 155.0, 90.0)),
        LandCover.PARK: (0.40, (165.0, 150.0, 85.0)),
        LandCover.TREE: (0.60, (200.0, 120.0, 45.0)),
    },
    "winter": {
        LandCover.GRASS: (0.80, SNOW),
        LandCover.PARK: (0.80, SNOW),
        LandCover.TREE: (0.40, (215.0, 222.0, 228.0)),
        LandCover.BUILDING: (0.55, SNOW),
        LandCover.BARE: (0.60, SNOW),
        LandCover.PAVED: (0.35, SNOW),
        LandCover.WATER: (0.35, (200.0, 214.0, 226.0)),
    },
}

WALL_COLOURS = np.array(
    [
        (222, 205, 170),  # beige render
        (178, 100, 78),  # brick
        (232, 230, 222),  # white plaster
        (168, 168, 162),  # concrete
        (214, 186, 118),  # ochre
        (150, 140, 132),  # grey-brown stone
        (200, 176, 156),  # sandstone
        (120, 130, 140),  # dark glass/steel
    ],
    dtype=np.float32,
)
WINDOW_COLOUR = np.array((62.0, 78.0, 96.0), dtype=np.float32)
TRUNK_COLOUR = np.array((92.0, 70.0, 50.0), dtype=np.float32)
FLOOR_HEIGHT_M = 3.0


def _season_tables(season: str) -> tuple[np.ndarray, np.ndarray]:
    weight = np.zeros(256, dtype=np.float32)
    target = np.zeros((256, 3), dtype=np.float32)
    for cls, (w, colour) in _SEASON_TINTS[season].items():
        weight[int(cls)] = w
        target[int(cls)] = colour
    return weight, target


def season_albedo(colour: np.ndarray, landcover: np.ndarray, season: str) -> np.ndarray:
    """Top-down surface colour (uint8 ``(..., 3)``) tinted for the season, as float32 0..255."""
    colour = colour.astype(np.float32)
    if season == "summer":
        return colour
    weight, target = _season_tables(season)
    w = weight[landcover][..., None]
    return colour * (1.0 - w) + target[landcover] * w


def _sun_steps_cells(settings: RenderSettings) -> tuple[float, float]:
    """Per metre of horizontal travel towards the sun: (d_row, d_col) in unit cells."""
    az = math.radians(settings.sun_azimuth_deg)
    return -math.cos(az), math.sin(az)


def flat_light(shadow: np.ndarray, settings: RenderSettings) -> np.ndarray:
    """Light factor on horizontal surfaces; 1.0 = sunlit at the reference 45 degree sun."""
    lam = math.sin(math.radians(settings.sun_elevation_deg))
    norm = settings.ambient + (1.0 - settings.ambient) * math.sin(math.radians(45.0))
    return settings.brightness * (settings.ambient + (1.0 - settings.ambient) * lam * (1.0 - shadow)) / norm


def wall_light(
    normal_east: np.ndarray, normal_north: np.ndarray, shadow: np.ndarray, settings: RenderSettings
) -> np.ndarray:
    """Light factor on vertical walls with horizontal unit normals (Lambert + ambient)."""
    se, sn, _ = settings.sun_direction
    lam = np.clip(normal_east * se + normal_north * sn, 0.0, None)
    norm = settings.ambient + (1.0 - settings.ambient) * math.sin(math.radians(45.0))
    return settings.brightness * (settings.ambient + (1.0 - settings.ambient) * lam * (1.0 - shadow)) / norm


def shadow_line_window(
    world: World, window: CellWindow, settings: RenderSettings, max_reach_m: float = 200.0
) -> np.ndarray:
    """Per window cell, the height (m) below which its vertical column is in the sun's shadow.

    A point at height ``z`` above a cell is in shadow when a ray from it towards the sun meets
    something taller: for some horizontal distance ``d`` along the sun azimuth,
    ``height(p + d) - d * tan(elevation) > z``; the maximum of the left side over ``d`` is the
    cell's shadow line (``-inf`` when nothing stands towards the sun). Computed with whole-array
    shifts (one per step of one cell), no per-cell loops; shadows reach ``max_reach_m`` at most.
    """
    cs = world.georef.cell_size_m
    tan_el = math.tan(math.radians(settings.sun_elevation_deg))
    reach_cells = math.ceil(max_reach_m / cs)
    max_h = HeightPyramid.of(world).max_in(window.grow(reach_cells))
    steps = int(min(reach_cells, math.ceil(max_h / tan_el / cs)))
    line = np.full((window.rows, window.cols), -np.inf, dtype=np.float32)
    if steps <= 0:
        return line
    padded = window.grow(steps).take(world.height)
    d_row, d_col = _sun_steps_cells(settings)
    seen: set[tuple[int, int]] = set()
    for k in range(1, steps + 1):
        dr, dc = round(k * d_row), round(k * d_col)
        if (dr, dc) in seen:
            continue
        seen.add((dr, dc))
        rise = math.hypot(dr, dc) * cs * tan_el
        block = padded[steps + dr : steps + dr + window.rows, steps + dc : steps + dc + window.cols]
        np.maximum(line, block - rise, out=line)
    return line


class SunShadowMap:
    """The world's shadow lines (see :func:`shadow_line_window`) for one sun position, computed
    lazily tile by tile and cached per world, so rendering many locations of one world pays for
    each tile once. Stored as float16 (a few centimetres of precision)."""

    TILE = 64
    BIAS_M = 0.25  # a point must be this far below the shadow line to count as shadowed

    def __init__(self, world: World, settings: RenderSettings) -> None:
        self._world = weakref.ref(world)
        self._settings = settings
        h, w = world.shape
        self._shape = (h, w)
        self.line = np.zeros((h, w), dtype=np.float16)  # calloc: untouched tiles cost no memory
        self._done = np.zeros((-(-h // self.TILE), -(-w // self.TILE)), dtype=bool)

    def _live_world(self) -> World:
        world = self._world()
        assert world is not None  # the map is cached on its world (render.cache) and used while rendering it
        return world

    @classmethod
    def of(cls, world: World, settings: RenderSettings) -> SunShadowMap:
        key = ("sun-shadow", float(settings.sun_azimuth_deg), float(settings.sun_elevation_deg))
        return cached(world, key, lambda: cls(world, settings))

    def _ensure(self, tile_rows: np.ndarray, tile_cols: np.ndarray) -> None:
        world = self._live_world()
        h, w = self._shape
        t = self.TILE
        for i, j in set(zip(tile_rows.tolist(), tile_cols.tolist())):
            if self._done[i, j]:
                continue
            window = CellWindow(i * t, j * t, min(t, h - i * t), min(t, w - j * t))
            self.line[i * t : i * t + window.rows, j * t : j * t + window.cols] = shadow_line_window(
                world, window, self._settings
            )
            self._done[i, j] = True

    def at(self, flat_index: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Shadow (0/1 float32) at height ``z`` above the cells with these flat indices
        (``row * W + col``); by default at each cell's own surface (roof, crown or ground)."""
        w = self._shape[1]
        n_tc = self._done.shape[1]
        tiles = (flat_index // (w * self.TILE)) * n_tc + (flat_index % w) // self.TILE
        needed = np.zeros(self._done.size, dtype=bool)
        needed[tiles] = True
        missing = np.flatnonzero(needed & ~self._done.ravel())
        if missing.size:
            self._ensure(missing // n_tc, missing % n_tc)
        if z is None:
            z = np.take(self._live_world().height.ravel(), flat_index)
        return (z + self.BIAS_M < np.take(self.line.ravel(), flat_index)).astype(np.float32)

    def take(self, window: CellWindow) -> np.ndarray:
        """Shadow (0/1 float32) of each window cell's surface (edge cells repeated outside)."""
        h, w = self._shape
        t = self.TILE
        r0, r1 = np.clip([window.row0, window.row0 + window.rows - 1], 0, h - 1) // t
        c0, c1 = np.clip([window.col0, window.col0 + window.cols - 1], 0, w - 1) // t
        tr, tc = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
        self._ensure(tr.ravel(), tc.ravel())
        z = window.take(self._live_world().height)
        return (z + self.BIAS_M < window.take(self.line)).astype(np.float32)


def wall_colour(building_id: np.ndarray, roof_colour: np.ndarray) -> np.ndarray:
    """Facade colour of each building, deterministic from its id, with a hint of its roof colour."""
    key = (building_id.astype(np.uint64) * np.uint64(2654435761)) >> np.uint64(7)
    base = WALL_COLOURS[(key % np.uint64(len(WALL_COLOURS))).astype(np.int64)]
    return 0.8 * base + 0.2 * roof_colour.astype(np.float32)


def foliage_texture(cell_index: np.ndarray, z_m: np.ndarray) -> np.ndarray:
    """A deterministic leafy brightness factor (0.8-1.1) per cell and 1.5 m height band, so tree
    crowns seen from the side are not flat walls of one green."""
    band = np.floor(np.asarray(z_m) / 1.5).astype(np.int64).astype(np.uint64)
    key = (cell_index.astype(np.uint64) * np.uint64(2654435761) + band * np.uint64(40503)) >> np.uint64(9)
    return (0.8 + 0.05 * (key % np.uint64(7)).astype(np.float32)).astype(np.float32)


def window_mask(z_m: np.ndarray, along_m: np.ndarray) -> np.ndarray:
    """True where a facade point (height ``z_m``, ``along_m`` along the wall) is a window."""
    fz = np.mod(z_m, FLOOR_HEIGHT_M) / FLOOR_HEIGHT_M
    fu = np.mod(along_m, 3.0) / 3.0
    return (fz > 0.32) & (fz < 0.75) & (fu > 0.3) & (fu < 0.75) & (z_m > 0.8)


def sky_colour(elevation: np.ndarray, azimuth: np.ndarray, settings: RenderSettings) -> np.ndarray:
    """Sky radiance for view directions (radians, azimuth clockwise from north): a horizon-to-zenith
    gradient with a glow around the sun; returns float32 ``(..., 3)``."""
    horizon = np.array((208.0, 224.0, 238.0), dtype=np.float32)
    zenith = np.array((92.0, 142.0, 212.0), dtype=np.float32)
    if settings.season == "winter":
        horizon = 0.6 * horizon + 0.4 * np.array((214.0, 216.0, 220.0), dtype=np.float32)
        zenith = 0.6 * zenith + 0.4 * np.array((170.0, 180.0, 195.0), dtype=np.float32)
    t = np.sqrt(np.clip(np.sin(elevation), 0.0, 1.0)).astype(np.float32)[..., None]
    sky = horizon * (1.0 - t) + zenith * t
    se, sn, su = settings.sun_direction
    cos_angle = np.cos(elevation) * (np.sin(azimuth) * se + np.cos(azimuth) * sn) + np.sin(elevation) * su
    glow = np.exp((np.clip(cos_angle, -1.0, 1.0) - 1.0) / 0.02).astype(np.float32)[..., None]
    sky = sky * (1.0 - 0.8 * glow) + np.float32(255.0) * 0.8 * glow
    return sky * np.float32(min(settings.brightness, 1.6))
