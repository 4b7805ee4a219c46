"""Typed rendering knobs shared by every view: sun, light, season, noise, haze, field of view."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

SEASONS = ("spring", "summer", "autumn", "winter")


@dataclass(frozen=True)
class RenderSettings:
    """How a world is lit and photographed; the same settings give the same pixels.

    Attributes:
        sun_azimuth_deg: where the sun is, clockwise from north (135 = south-east).
        sun_elevation_deg: sun height above the horizon (shadows are ``height / tan(el)`` long).
        brightness: global exposure multiplier (1 = nominal).
        season: ``spring`` | ``summer`` | ``autumn`` | ``winter``: vegetation tint, winter snow.
        noise_std: standard deviation of additive Gaussian sensor noise, in 0..255 units (0 = none).
        ambient: fraction of light that still reaches shadowed / sun-averted surfaces (0..1).
        drone_fov_deg: horizontal (= vertical, square image) field of view of the drone camera.
        haze_distance_m: e-folding distance of aerial haze for the drone view (larger = clearer).
        fog_distance_m: e-folding distance of distance fog for the street panorama.
    """

    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 45.0
    brightness: float = 1.0
    season: str = "summer"
    noise_std: float = 0.0
    ambient: float = 0.55
    drone_fov_deg: float = 60.0
    haze_distance_m: float = 2500.0
    fog_distance_m: float = 450.0

    def __post_init__(self) -> None:
        if self.season not in SEASONS:
            raise ValueError(f"season must be one of {', '.join(SEASONS)}, got {self.season!r}")
        if not 0.5 <= self.sun_elevation_deg <= 90.0:
            raise ValueError(f"sun_elevation_deg must be in [0.5, 90], got {self.sun_elevation_deg}")
        if self.brightness <= 0:
            raise ValueError(f"brightness must be positive, got {self.brightness}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if not 0.0 <= self.ambient <= 1.0:
            raise ValueError(f"ambient must be in [0, 1], got {self.ambient}")
        if not 5.0 <= self.drone_fov_deg <= 120.0:
            raise ValueError(f"drone_fov_deg must be in [5, 120], got {self.drone_fov_deg}")
        if self.haze_distance_m <= 0 or self.fog_distance_m <= 0:
            raise ValueError("haze_distance_m and fog_distance_m must be positive")

    @classmethod
    def from_dict(cls, values: dict) -> RenderSettings:
        """Build from a mapping (e.g. a YAML section); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown render setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def sun_direction(self) -> tuple[float, float, float]:
        """Unit vector towards the sun as (east, north, up)."""
        az = math.radians(self.sun_azimuth_deg)
        el = math.radians(self.sun_elevation_deg)
        return (math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el))


def capture_conditions(base: RenderSettings, variation: float, rng: np.random.Generator) -> RenderSettings:
    """The conditions one image of a place was taken under, when the views of a place were not
    captured together (street imagery, drone flights and satellite passes come from different
    days, hours and seasons). ``variation`` in [0, 1] scales the spread around ``base``: the sun
    turns by up to +-180*v degrees and rises or sinks by up to 25*v, exposure changes by a factor
    exp(N(0, 0.3 v)), and with probability v/2 the season is another one. 0 returns ``base``."""
    if not 0.0 <= variation <= 1.0:
        raise ValueError(f"capture variation must be in [0, 1], got {variation}")
    if variation == 0.0:
        return base
    azimuth = (base.sun_azimuth_deg + rng.uniform(-180.0, 180.0) * variation) % 360.0
    elevation = float(np.clip(base.sun_elevation_deg + rng.uniform(-25.0, 25.0) * variation, 10.0, 80.0))
    brightness = float(base.brightness * np.exp(rng.normal(0.0, 0.3 * variation)))
    season = base.season
    if rng.random() < variation / 2:
        season = str(rng.choice([s for s in SEASONS if s != base.season]))
    return replace(
        base,
        sun_azimuth_deg=float(azimuth),
        sun_elevation_deg=elevation,
        brightness=brightness,
        season=season,
    )
