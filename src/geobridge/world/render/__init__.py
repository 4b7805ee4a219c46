"""Renderers of the embedded world: satellite, drone, street panorama and map views of a location,
all drawn from the same :class:`~geobridge.world.model.World` raster so they are co-located by
construction. Each returns an ``(H, W, 3)`` uint8 array; everything is vectorised numpy.

Conventions:

- ``render_satellite`` / ``render_map``: north-up, ``ground_m`` x ``ground_m`` metres centred on
  the location (image row 0 is north, column 0 west), ``size_px`` square.
- ``render_drone``: oblique pinhole camera looking at the location (image centre), 80-180 m up,
  35-60 degrees below horizontal, any heading; the image top is the far side.
- ``render_street``: equirectangular 360-degree panorama ``(height_px, 2 * height_px)`` from 2 m
  above the location; column 0 looks along ``heading_deg`` (north = 0, clockwise), so turning
  the heading by 90 degrees rolls the panorama by a quarter of its width. World datasets use
  ``height_px = size // 2`` (64 x 128 at 128 px), the cheaper of the two sizes.
- Randomness (drone pose, street heading, noise) comes only from the ``rng`` passed in: the same
  seed gives the same pixels.

Data derived from a world once (a height pyramid for ray marching, sun-shadow tiles for each sun
position) is cached per world object (:mod:`.cache`), so rendering many locations of one world
with one :class:`RenderSettings` pays for it once. Treat a world as read-only while rendering it.
"""

from geobridge.world.render.drone import DronePose, render_drone
from geobridge.world.render.map import MAP_PALETTE, render_map
from geobridge.world.render.satellite import render_satellite
from geobridge.world.render.settings import SEASONS, RenderSettings
from geobridge.world.render.street import render_street

__all__ = [
    "MAP_PALETTE",
    "SEASONS",
    "DronePose",
    "RenderSettings",
    "render_drone",
    "render_map",
    "render_satellite",
    "render_street",
]
