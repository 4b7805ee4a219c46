"""Renderers of the embedded world: satellite, drone, street panorama and map views of a location,
all drawn from the same :class:`~geobridge.world.model.World` raster so they are co-located by
construction. Each returns an ``(H, W, 3)`` uint8 array."""

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
