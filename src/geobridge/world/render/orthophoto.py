"""Drone orthophoto: GeoLoc's drone view, a north-up crop of a UAV orthomosaic.

GeoLoc does not use oblique drone photos: its drone images are reverse-crops of geo-referenced
UAV orthomosaics centred on the street panorama, at one of five ground scales (80-180 m), and
the UAV flew on another day than the satellite pass (docs/methods.md#geoloc-construction). So this
view is an orthographic render like the satellite tile, but at a crop scale drawn with GeoLoc's
published frequencies and under another sun (the flight's own light and shadows).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from geobridge.world.model import World
from geobridge.world.render.satellite import render_satellite
from geobridge.world.render.settings import RenderSettings

#: GeoLoc's drone crop scales (m) and how many crops it has at each (docs/methods.md#geoloc).
GEOLOC_CROP_SCALES_M: tuple[float, ...] = (80.0, 100.0, 120.0, 150.0, 180.0)
GEOLOC_CROP_COUNTS: tuple[int, ...] = (10_102, 15_066, 5_884, 11_281, 10_352)


def flight_settings(settings: RenderSettings) -> RenderSettings:
    """The UAV flight's light: the sun a quarter of the sky further round and higher than during
    the satellite pass (other shadows), a slightly brighter exposure; everything else unchanged."""
    return replace(
        settings,
        sun_azimuth_deg=(settings.sun_azimuth_deg + 100.0) % 360.0,
        sun_elevation_deg=min(75.0, settings.sun_elevation_deg + 15.0),
        brightness=settings.brightness * 1.06,
    )


def render_drone_orthophoto(
    world: World,
    lat: float,
    lon: float,
    size_px: int,
    rng: np.random.Generator,
    settings: RenderSettings = RenderSettings(),
) -> np.ndarray:
    """A ``size_px`` square north-up crop centred on (lat, lon) at a GeoLoc crop scale drawn from
    ``rng`` (one draw), lit as :func:`flight_settings` says; ``(size_px, size_px, 3)`` uint8."""
    weights = np.asarray(GEOLOC_CROP_COUNTS, dtype=np.float64)
    scale = GEOLOC_CROP_SCALES_M[int(rng.choice(len(weights), p=weights / weights.sum()))]
    return render_satellite(
        world, lat, lon, size_px=size_px, ground_m=scale, settings=flight_settings(settings), rng=rng
    )
