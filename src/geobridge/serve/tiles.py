"""The gallery's own images as slippy-map tiles: ``GET /tiles/{z}/{x}/{y}.png`` for the page's map.

Each gallery image is pasted over its ground footprint (a square of ``size_m`` metres centred on
its position; galleries whose source does not record it use the median distance between
neighbouring places) into 256 px Web Mercator tiles, so the page's base layer is the imagery the
answer was searched in, with nothing fetched from the internet. A tile where footprints would be
under ``MIN_FOOTPRINT_PX`` wide, or that no footprint touches, is transparent (the page draws
the places as dots there).
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from geobridge.geo import ground_resolution_m, latlon_to_tile_fraction, metres_per_degree, tile_bounds
from geobridge.images import ImageError, open_image

TILE_PX = 256
MAX_ZOOM = 22
MIN_FOOTPRINT_PX = 6.0
MAX_IMAGES_PER_TILE = 400
SOURCE_SIDE_PX = 512  # gallery images are read at most this large, then resized to their footprint


def _transparent_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (TILE_PX, TILE_PX), (0, 0, 0, 0)).save(out, format="PNG", optimize=True)
    return out.getvalue()


EMPTY_TILE = _transparent_png()


@dataclass(frozen=True)
class Footprints:
    """Each gallery entry's image path and ground box in degrees (arrays in gallery order)."""

    paths: list[str | None]
    west: np.ndarray
    south: np.ndarray
    east: np.ndarray
    north: np.ndarray
    size_m: np.ndarray

    @classmethod
    def of(
        cls, lat: np.ndarray, lon: np.ndarray, size_m: np.ndarray | None, paths: list[str | None]
    ) -> Footprints:
        """Boxes of ``size_m`` metres around each position (NaN or missing: :func:`default_size_m`)."""
        lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
        sizes = np.full(lat.shape, np.nan) if size_m is None else np.asarray(size_m, np.float64).copy()
        sizes[~np.isfinite(sizes) | (sizes <= 0)] = default_size_m(lat, lon)
        per_lat = metres_per_degree(0.0)[0]
        half_lat = sizes / 2 / per_lat
        half_lon = sizes / 2 / (per_lat * np.maximum(np.cos(np.radians(lat)), 1e-6))
        return cls(paths, lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat, sizes)

    def to_bounds(self) -> list[list[float]]:
        """[[south, west, north, east], ...] rounded to 7 decimals (about a centimetre)."""
        stacked = np.stack([self.south, self.west, self.north, self.east], axis=1)
        return np.round(stacked, 7).tolist()


def default_size_m(lat: np.ndarray, lon: np.ndarray, sample: int = 2000) -> float:
    """The median nearest-neighbour distance between places (over at most ``sample`` of them),
    so footprints of unknown size about tile the area; 100 m for a gallery of one place."""
    if lat.size < 2:
        return 100.0
    pick = np.linspace(0, lat.size - 1, min(sample, lat.size)).astype(int)
    per_lat, per_lon = metres_per_degree(float(np.mean(lat[pick])))
    xy = np.stack([lon[pick] * per_lon, lat[pick] * per_lat], axis=1)
    distances = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)
    nearest = nearest[np.isfinite(nearest) & (nearest > 0)]
    return float(np.median(nearest)) if nearest.size else 100.0


class TileRenderer:
    """Renders and caches PNG tiles of one gallery's footprints."""

    def __init__(self, footprints: Footprints) -> None:
        self.footprints = footprints
        self._tile = functools.lru_cache(maxsize=1024)(self._render)
        self._image = functools.lru_cache(maxsize=256)(_read_image)

    def tile(self, z: int, x: int, y: int) -> bytes:
        """The PNG of tile (z, x, y); the transparent tile when nothing is drawn there."""
        if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
            return EMPTY_TILE
        return self._tile(z, x, y)

    def _render(self, z: int, x: int, y: int) -> bytes:
        fp, box = self.footprints, tile_bounds(x, y, z)
        inside = np.flatnonzero(
            (fp.east > box.west) & (fp.west < box.east) & (fp.north > box.south) & (fp.south < box.north)
        )
        if inside.size == 0:
            return EMPTY_TILE
        if float(np.median(fp.size_m[inside])) / ground_resolution_m(box.centre[0], z) < MIN_FOOTPRINT_PX:
            return EMPTY_TILE
        canvas = Image.new("RGBA", (TILE_PX, TILE_PX), (0, 0, 0, 0))
        drawn = 0
        for row in inside[:MAX_IMAGES_PER_TILE]:
            path = fp.paths[row]
            image = None if path is None else self._image(path)
            if image is None:
                continue
            x0, y0 = _pixel(fp.north[row], fp.west[row], z, x, y)
            x1, y1 = _pixel(fp.south[row], fp.east[row], z, x, y)
            width, height = max(1, round(x1 - x0)), max(1, round(y1 - y0))
            canvas.paste(image.resize((width, height), Image.Resampling.BILINEAR), (round(x0), round(y0)))
            drawn += 1
        if not drawn:
            return EMPTY_TILE
        out = io.BytesIO()
        canvas.save(out, format="PNG")
        return out.getvalue()


def _pixel(lat: float, lon: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Pixel position of (lat, lon) inside tile (z, x, y)."""
    fx, fy = latlon_to_tile_fraction(float(lat), float(lon), z)
    return (fx - x) * TILE_PX, (fy - y) * TILE_PX


def _read_image(path: str) -> Image.Image | None:
    """A gallery image as RGB, at most ``SOURCE_SIDE_PX`` on a side; None when it cannot be read."""
    try:
        return open_image(Path(path), max_side=SOURCE_SIDE_PX).convert("RGB")
    except (ImageError, OSError):
        return None
