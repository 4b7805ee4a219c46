"""Satellite view: an orthographic, north-up crop of the world's surface colour, season-tinted,
lit by the sun, with the shadows that buildings and trees cast, and optional sensor noise."""

from __future__ import annotations

import math

import numpy as np

from geobridge.world.model import World
from geobridge.world.render.raster import (
    CellWindow,
    bilinear_window,
    box_downsample,
    crop_axes,
    to_uint8,
)
from geobridge.world.render.settings import RenderSettings
from geobridge.world.render.shading import SunShadowMap, flat_light, season_albedo

DEFAULT_SETTINGS = RenderSettings()


def supersample_factor(ground_m: float, size_px: int, cell_size_m: float) -> int:
    """Sub-samples per pixel side so that each sub-sample is at most ~one cell (area sampling)."""
    cells_per_px = ground_m / size_px / cell_size_m
    return int(min(8, max(1, math.ceil(cells_per_px - 0.25))))


def location_rng(lat: float, lon: float) -> np.random.Generator:
    """A generator seeded by the location, for noise when the caller passes no rng."""
    return np.random.default_rng([abs(int(round(lat * 1e7))), abs(int(round(lon * 1e7)))])


def shaded_surface(world: World, window: CellWindow, settings: RenderSettings) -> np.ndarray:
    """Per-cell colour seen from straight above: season-tinted albedo times sun light and shadow."""
    albedo = season_albedo(window.take(world.colour), window.take(world.landcover), settings.season)
    light = flat_light(SunShadowMap.of(world, settings).take(window), settings)
    return albedo * light[..., None].astype(np.float32)


def render_satellite(
    world: World,
    lat: float,
    lon: float,
    size_px: int = 128,
    ground_m: float = 120.0,
    settings: RenderSettings = DEFAULT_SETTINGS,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Render the ``ground_m`` x ``ground_m`` metre north-up tile centred on (lat, lon).

    Returns ``(size_px, size_px, 3)`` uint8. ``rng`` only drives sensor noise
    (``settings.noise_std``); without one the noise is seeded by the location, so the tile of a
    location is always the same.
    """
    if size_px <= 0 or ground_m <= 0:
        raise ValueError(f"size_px and ground_m must be positive, got {size_px}, {ground_m}")
    factor = supersample_factor(ground_m, size_px, world.georef.cell_size_m)
    rows, cols = crop_axes(world, lat, lon, size_px * factor, ground_m)
    window = CellWindow.covering(rows, cols, margin=1)
    surface = shaded_surface(world, window, settings)
    image = box_downsample(bilinear_window(surface, window, rows, cols), factor)
    if settings.noise_std > 0 and rng is None:
        rng = location_rng(lat, lon)
    return to_uint8(image, settings.noise_std, rng)
