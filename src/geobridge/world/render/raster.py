"""Raster lookups shared by the renderers: where a location sits on the grid, the north-up pixel
grid of a ground crop, clamped nearest-cell gathers and bilinear resampling of a cell window.

Coordinates are continuous cell units (``row`` southwards, ``col`` eastwards); cell ``(r, c)``
covers ``[r, r+1) x [c, c+1)``, so its value sits at ``(r + 0.5, c + 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geobridge.world.model import World


def location_cell(world: World, lat: float, lon: float) -> tuple[float, float]:
    """(row, col) of a location in continuous cell units."""
    row, col = world.georef.latlon_to_cell(lat, lon)
    return float(row), float(col)


def nearest_index(world: World, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the cells holding (rows, cols), clamped to the grid, and an inside mask."""
    h, w = world.shape
    ri = np.floor(rows).astype(np.int64)
    ci = np.floor(cols).astype(np.int64)
    inside = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
    np.clip(ri, 0, h - 1, out=ri)
    np.clip(ci, 0, w - 1, out=ci)
    return ri * w + ci, inside


@dataclass(frozen=True)
class CellWindow:
    """The cells ``[row0, row0 + rows) x [col0, col0 + cols)`` (may overhang the grid)."""

    row0: int
    col0: int
    rows: int
    cols: int

    @classmethod
    def covering(cls, rows: np.ndarray, cols: np.ndarray, margin: int = 1) -> CellWindow:
        """The smallest window holding every (row, col) with ``margin`` cells to spare."""
        r0 = int(np.floor(np.min(rows))) - margin
        c0 = int(np.floor(np.min(cols))) - margin
        r1 = int(np.floor(np.max(rows))) + margin + 1
        c1 = int(np.floor(np.max(cols))) + margin + 1
        return cls(r0, c0, r1 - r0, c1 - c0)

    def grow(self, margin: int) -> CellWindow:
        return CellWindow(
            self.row0 - margin, self.col0 - margin, self.rows + 2 * margin, self.cols + 2 * margin
        )

    def take(self, raster: np.ndarray) -> np.ndarray:
        """The window's block of ``raster`` (first two axes), edge cells repeated outside."""
        h, w = raster.shape[:2]
        r0, c0 = self.row0, self.col0
        r1, c1 = r0 + self.rows, c0 + self.cols
        if r0 >= 0 and c0 >= 0 and r1 <= h and c1 <= w:
            return raster[r0:r1, c0:c1]
        ri = np.clip(np.arange(r0, r1), 0, h - 1)
        ci = np.clip(np.arange(c0, c1), 0, w - 1)
        return raster[ri[:, None], ci[None, :]]

    def inside_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """True where a window cell lies on the grid."""
        h, w = shape
        ri = np.arange(self.row0, self.row0 + self.rows)
        ci = np.arange(self.col0, self.col0 + self.cols)
        return ((ri >= 0) & (ri < h))[:, None] & ((ci >= 0) & (ci < w))[None, :]


def crop_axes(world: World, lat: float, lon: float, n: int, ground_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of the ``n`` x ``n`` pixel centres of a north-up crop.

    The crop is ``ground_m`` metres on a side, centred on (lat, lon); image row 0 is north.
    """
    r_c, c_c = location_cell(world, lat, lon)
    offsets = ((np.arange(n) + 0.5) / n - 0.5) * (ground_m / world.georef.cell_size_m)
    return r_c + offsets, c_c + offsets


def bilinear_window(image: np.ndarray, window: CellWindow, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample a per-cell ``image`` (window-shaped, ``(h, w, C)`` float) bilinearly on the separable
    grid ``rows`` x ``cols`` (1-D, continuous cell units); returns ``(len(rows), len(cols), C)``."""
    y = rows - window.row0 - 0.5
    x = cols - window.col0 - 0.5
    y0 = np.clip(np.floor(y).astype(np.int64), 0, window.rows - 2)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, window.cols - 2)
    fy = np.clip(y - y0, 0.0, 1.0).astype(np.float32)[:, None, None]
    fx = np.clip(x - x0, 0.0, 1.0).astype(np.float32)[None, :, None]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x0 + 1] * fx
    bottom = image[y0 + 1][:, x0] * (1 - fx) + image[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def nearest_window(image: np.ndarray, window: CellWindow, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Nearest-cell sampling of a window-shaped ``image`` on the grid ``rows`` x ``cols``."""
    yi = np.clip(np.floor(rows - window.row0).astype(np.int64), 0, window.rows - 1)
    xi = np.clip(np.floor(cols - window.col0).astype(np.int64), 0, window.cols - 1)
    return image[yi][:, xi]


def box_downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` pixel blocks (area sampling after supersampling)."""
    if factor == 1:
        return image
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return image.reshape(h, factor, w, factor, -1).mean(axis=(1, 3))


def to_uint8(image: np.ndarray, noise_std: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Float 0..255 image -> uint8, after optional additive Gaussian noise."""
    if noise_std > 0:
        if rng is None:
            raise ValueError("noise_std > 0 needs an rng")
        image = image + rng.normal(0.0, noise_std, size=image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
