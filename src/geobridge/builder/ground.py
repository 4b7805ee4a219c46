"""North-up pixel grids on the ground: where each output pixel of a crop lies on Earth.

A crop of ``size_m`` metres rendered at ``size_px`` pixels is a square in the local east/north
plane around its centre; its pixel centres are turned into latitude/longitude here, and each
source (a GeoTIFF in any CRS, a Web Mercator tile mosaic) maps them into its own pixels. This is
what makes every product true north-up and centred on the same point, whatever the source CRS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geobridge.geo import offset_latlon


@dataclass(frozen=True)
class GroundGrid:
    """Latitude and longitude of every pixel centre of a north-up square crop (rows southwards)."""

    lat: np.ndarray  # (size_px, size_px) float64
    lon: np.ndarray  # (size_px, size_px) float64
    centre_lat: float
    centre_lon: float
    size_m: float

    @property
    def size_px(self) -> int:
        return int(self.lat.shape[0])


def ground_grid(lat: float, lon: float, size_m: float, size_px: int) -> GroundGrid:
    """The pixel-centre coordinates of a ``size_m`` x ``size_m`` crop centred on (lat, lon)."""
    step = size_m / size_px
    offsets = (np.arange(size_px, dtype=np.float64) + 0.5) * step - size_m / 2.0
    east = np.broadcast_to(offsets[None, :], (size_px, size_px))
    north = np.broadcast_to(-offsets[:, None], (size_px, size_px))
    grid_lat, grid_lon = offset_latlon(lat, lon, east, north)
    return GroundGrid(np.asarray(grid_lat), np.asarray(grid_lon), float(lat), float(lon), float(size_m))


def coarse_then_dense(func, grid: GroundGrid, nodes: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a smooth point mapping ``func(lat, lon) -> (u, v)`` on a coarse lattice and
    interpolate it bilinearly to every pixel. Map projections are smooth at crop scale, so this is
    exact to a tiny fraction of a pixel while calling the (slow) projection library ~300 times
    instead of once per pixel."""
    n = grid.size_px
    if n <= nodes:
        u, v = func(grid.lat, grid.lon)
        return np.asarray(u, dtype=np.float32), np.asarray(v, dtype=np.float32)
    node_pos = np.linspace(0.0, n - 1.0, nodes)
    lat_nodes = np.interp(node_pos, np.arange(n), grid.lat[:, 0])
    lon_nodes = np.interp(node_pos, np.arange(n), grid.lon[0, :])
    lat_c, lon_c = np.meshgrid(lat_nodes, lon_nodes, indexing="ij")
    u, v = func(lat_c, lon_c)
    left, frac = _linear_weights(n, nodes)
    return _interp2(np.asarray(u, dtype=np.float64), left, frac), _interp2(
        np.asarray(v, dtype=np.float64), left, frac
    )


def _linear_weights(n: int, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``n`` output points over ``nodes`` evenly spaced nodes: left node index and fraction."""
    pos = np.arange(n) * (nodes - 1) / (n - 1)
    left = np.minimum(np.floor(pos).astype(int), nodes - 2)
    return left, pos - left


def _interp2(values: np.ndarray, left: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Separable bilinear interpolation of a (nodes, nodes) lattice to (n, n), element-wise (no
    BLAS: its worker threads spin badly on a busy machine)."""
    rows = values[left] * (1.0 - frac)[:, None] + values[left + 1] * frac[:, None]
    dense = rows[:, left] * (1.0 - frac)[None, :] + rows[:, left + 1] * frac[None, :]
    return dense.astype(np.float32)
