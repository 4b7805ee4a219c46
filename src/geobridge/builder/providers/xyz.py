"""XYZ (slippy-map) satellite tiles: any URL template, and the ground-footprint mosaic on top.

`XYZUrlTiles` fetches ``{z}/{x}/{y}`` tiles from a URL template through the shared HTTP client
(HTML error pages and non-images are refused). `TileMosaicSatellite` turns any tile source into a
`SatelliteProvider`: it stitches the tiles under a ground square and resamples them to a north-up
image of that square, pixel by pixel through Web Mercator, so the result is centred on the
requested point whatever the latitude.
"""

from __future__ import annotations

import math

import numpy as np

from geobridge.builder.ground import ground_grid
from geobridge.builder.providers.base import ProviderError, TileSource
from geobridge.builder.providers.http import HttpClient
from geobridge.builder.providers.images import decode_rgb
from geobridge.geo import MAX_MERCATOR_LAT


class XYZUrlTiles:
    """Tiles from a URL template such as ``https://host/{z}/{x}/{y}.png`` (``{s}`` not used)."""

    name = "xyz-url"

    def __init__(self, template: str, client: HttpClient):
        if not all(k in template for k in ("{z}", "{x}", "{y}")):
            raise ProviderError(f"tile URL template {template!r} must contain {{z}}, {{x}} and {{y}}")
        self.template = template
        self.client = client

    def get_tile(self, z: int, x: int, y: int) -> bytes:
        url = self.template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
        return self.client.get(url, expect="image").body


def tile_fractions(lat: np.ndarray, lon: np.ndarray, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised fractional tile coordinates (x eastwards, y southwards) at ``zoom``."""
    n = 2.0**zoom
    lat_r = np.radians(np.clip(lat, -MAX_MERCATOR_LAT, MAX_MERCATOR_LAT))
    x = (np.asarray(lon) + 180.0) / 360.0 * n
    y = (1.0 - np.arcsinh(np.tan(lat_r)) / math.pi) / 2.0 * n
    return x, y


class TileMosaicSatellite:
    """A `SatelliteProvider` built from tiles at one zoom level."""

    def __init__(self, tiles: TileSource, zoom: int, tile_size: int = 256):
        self.tiles = tiles
        self.zoom = zoom
        self.tile_size = tile_size
        self.name = f"{tiles.name}@z{zoom}"

    def fetch(self, lat: float, lon: float, size_m: float, size_px: int) -> np.ndarray:
        import cv2

        grid = ground_grid(lat, lon, size_m, size_px)
        tx, ty = tile_fractions(grid.lat, grid.lon, self.zoom)
        x0, x1 = int(math.floor(tx.min())), int(math.floor(tx.max()))
        y0, y1 = int(math.floor(ty.min())), int(math.floor(ty.max()))
        if (x1 - x0 + 1) * (y1 - y0 + 1) > 64:
            raise ProviderError(
                f"a {size_m:g} m square needs {(x1 - x0 + 1) * (y1 - y0 + 1)} tiles at zoom {self.zoom}; "
                "lower satellite.zoom"
            )
        ts = self.tile_size
        mosaic: np.ndarray = np.zeros(((y1 - y0 + 1) * ts, (x1 - x0 + 1) * ts, 3), dtype=np.uint8)
        for ty_i in range(y0, y1 + 1):
            for tx_i in range(x0, x1 + 1):
                data = self.tiles.get_tile(self.zoom, tx_i, ty_i)
                tile = decode_rgb(data, what=f"tile {self.zoom}/{tx_i}/{ty_i}")
                if tile.shape[:2] != (ts, ts):
                    tile = cv2.resize(tile, (ts, ts), interpolation=cv2.INTER_AREA)
                r, c = (ty_i - y0) * ts, (tx_i - x0) * ts
                mosaic[r : r + ts, c : c + ts] = tile
        map_x = ((tx - x0) * ts - 0.5).astype(np.float32)
        map_y = ((ty - y0) * ts - 0.5).astype(np.float32)
        source_px = size_m / size_px
        tile_px_m = size_m / max(1e-9, (tx.max() - tx.min()) * ts) if tx.max() > tx.min() else source_px
        if source_px > 1.5 * tile_px_m:  # output much coarser than the tiles: pre-smooth against aliasing
            factor = source_px / tile_px_m
            mosaic = cv2.GaussianBlur(mosaic, (0, 0), sigmaX=0.5 * factor)
        return cv2.remap(mosaic, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
