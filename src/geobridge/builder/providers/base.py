"""The provider interface: what the pipeline asks of a panorama source and a satellite source.

Every provider failure that concerns one location raises `ProviderError` with a reason that ends
up in the build report; the pipeline skips that location and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from geobridge.geo import Footprint


class ProviderError(RuntimeError):
    """A provider could not deliver one item; ``str(err)`` is the reason shown in the report."""


@dataclass(frozen=True)
class Panorama:
    """A street-level 360-degree panorama: where it was taken and where its image is."""

    id: str
    lat: float
    lon: float
    heading_deg: float = 0.0  # compass direction of the image's first column (north = 0)
    source: str = ""  # file path or URL of the image, provider-specific
    provider: str = ""


@dataclass
class PanoramaSearch:
    """Panoramas found in an area, and entries that were skipped with their reasons."""

    panoramas: list[Panorama] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class PanoramaProvider(Protocol):
    """A source of street-level panoramas."""

    name: str

    def search(self, footprint: Footprint) -> PanoramaSearch:
        """Panoramas whose position lies inside ``footprint``."""

    def fetch_image(self, panorama: Panorama) -> bytes:
        """The encoded image (PNG/JPEG) of one panorama; raises `ProviderError`."""


class SatelliteProvider(Protocol):
    """A source of north-up satellite imagery at any ground footprint."""

    name: str

    def fetch(self, lat: float, lon: float, size_m: float, size_px: int) -> np.ndarray:
        """(size_px, size_px, 3) uint8 north-up image of the square centred on (lat, lon)."""


class TileSource(Protocol):
    """Encoded XYZ tiles by (z, x, y), y counted from the north (slippy-map convention)."""

    name: str

    def get_tile(self, z: int, x: int, y: int) -> bytes:
        """The tile's encoded image; raises `ProviderError` when it is missing or broken."""
