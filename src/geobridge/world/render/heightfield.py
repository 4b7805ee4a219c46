"""Ray-marching the world's height field: the first point where each ray enters a building, tree
or the ground, found coarse-to-fine and vectorised over all rays.

The heights are padded with a ring of zero cells (outside the world is flat ground) and summarised
by a max pyramid: the maximum height over each ``BLOCK`` x ``BLOCK`` block, dilated to its 3 x 3
block neighbourhood. A ray segment shorter than ``BLOCK`` cells (horizontally) that starts in a
block and stays above that block's dilated maximum cannot hit anything, so rays skip empty air in
big steps and are only marched finely (about a cell per step, then refined by bisection)
where a hit is possible.

Coordinates: ``rows``/``cols`` in continuous cell units of the world grid, ``z`` in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geobridge.world.model import World
from geobridge.world.render.cache import cached
from geobridge.world.render.raster import CellWindow

BLOCK = 8
_FINE_SEGMENTS = 2  # coarse segments marched cell by cell once a hit is possible
_COARSE_CHUNK = 16
_MAX_ROUNDS = 64
_REFINE = 4
FINE_STEP_CELLS = 1.0  # horizontal spacing of the fine samples (features narrower may be skipped)


@dataclass(frozen=True)
class HeightPyramid:
    """Zero-padded heights and their dilated block maxima."""

    padded: np.ndarray  # (H + 2, W + 2) float32; world cell (r, c) is padded[r + 1, c + 1]
    dilated_max: np.ndarray  # (ceil((H + 2) / BLOCK), ceil((W + 2) / BLOCK)) float32

    @classmethod
    def of(cls, world: World) -> HeightPyramid:
        return cached(world, "height-pyramid", lambda: cls._build(world.height))

    @classmethod
    def _build(cls, height: np.ndarray) -> HeightPyramid:
        padded = np.pad(height.astype(np.float32), 1)
        h, w = padded.shape
        nb_r, nb_c = -(-h // BLOCK), -(-w // BLOCK)
        blocks = np.zeros((nb_r * BLOCK, nb_c * BLOCK), np.float32)
        blocks[:h, :w] = padded
        block_max = blocks.reshape(nb_r, BLOCK, nb_c, BLOCK).max(axis=(1, 3))
        ring = np.pad(block_max, 1)
        dilated = np.max(
            np.stack(
                [
                    ring[1 + dr : 1 + dr + nb_r, 1 + dc : 1 + dc + nb_c]
                    for dr in (-1, 0, 1)
                    for dc in (-1, 0, 1)
                ]
            ),
            axis=0,
        )
        return cls(padded, dilated)

    def max_in(self, window: CellWindow) -> float:
        """An upper bound of the world height inside ``window`` (from the block maxima)."""
        nb_r, nb_c = self.dilated_max.shape
        r0 = int(np.clip((window.row0 + 1) // BLOCK, 0, nb_r - 1))
        r1 = int(np.clip((window.row0 + window.rows + 1) // BLOCK + 1, r0 + 1, nb_r))
        c0 = int(np.clip((window.col0 + 1) // BLOCK, 0, nb_c - 1))
        c1 = int(np.clip((window.col0 + window.cols + 1) // BLOCK + 1, c0 + 1, nb_c))
        return float(self.dilated_max[r0:r1, c0:c1].max())

    def height_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Height of the cells holding (rows, cols); 0 outside the world."""
        h, w = self.padded.shape
        pr = np.clip(np.asarray(rows) + 1.0, 0.0, h - 1e-3).astype(np.int32)
        pc = np.clip(np.asarray(cols) + 1.0, 0.0, w - 1e-3).astype(np.int32)
        return self.padded[pr, pc]


@dataclass(frozen=True)
class Rays:
    """Rays ``p(t) = start + t * direction`` in (row, col, z); ground (z = 0) at ``t_end``."""

    row: np.ndarray
    col: np.ndarray
    z: np.ndarray
    d_row: np.ndarray  # per unit t
    d_col: np.ndarray
    d_z: np.ndarray  # negative: rays go down
    t_end: np.ndarray  # where z reaches 0

    def select(self, which: np.ndarray) -> Rays:
        """The subset ``which``, as compact float32 arrays."""
        parts = (self.row, self.col, self.z, self.d_row, self.d_col, self.d_z, self.t_end)
        return Rays(*(np.ascontiguousarray(a[which], dtype=np.float32) for a in parts))


class _Lookup:
    """Fast clamped gathers into the padded heights and the block bounds (float32 positions)."""

    def __init__(self, pyramid: HeightPyramid) -> None:
        self.heights = pyramid.padded.ravel()
        self.bounds = pyramid.dilated_max.ravel()
        self.h, self.w = pyramid.padded.shape
        self.bw = pyramid.dilated_max.shape[1]

    def _clamped(self, r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.clip(r, 0.0, self.h - 1e-2, out=r)
        c = np.clip(c, 0.0, self.w - 1e-2, out=c)
        return r.astype(np.int32), c.astype(np.int32)

    def height(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Heights at padded-grid positions (clobbers ``r``/``c``)."""
        ri, ci = self._clamped(r, c)
        ri *= self.w
        ri += ci
        return np.take(self.heights, ri)

    def bound(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Block-neighbourhood height bounds at padded-grid positions (clobbers ``r``/``c``)."""
        ri, ci = self._clamped(r, c)
        ri //= BLOCK
        ci //= BLOCK
        ri *= self.bw
        ri += ci
        return np.take(self.bounds, ri)


def _first_true(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a ``(k, n)`` boolean array: whether any is set, and the first set row.

    (k where none is; computed as a max over weighted flags: argmax along axis 0 is slow.)
    """
    k = flags.shape[0]
    weights = np.arange(k, 0, -1, dtype=np.uint16 if k > 255 else np.uint8)[:, None]
    best = (flags * weights).max(axis=0)
    return best > 0, k - best.astype(np.int64)


def first_hit(pyramid: HeightPyramid, rays: Rays, cells_per_t: np.ndarray) -> np.ndarray:
    """Bracket ``(n, 2)`` of ``t`` around each ray's first entry into the height field.

    ``rays`` are in world-grid coordinates; ``cells_per_t`` is each ray's horizontal travel in
    cells per unit ``t``. The upper end is below the surface (or on the ground), the lower end
    above it, a small fraction of a cell apart. Arrays are laid out ``(samples, rays)`` so that
    numpy's inner loops run over the many rays.
    """
    n = len(rays.z)
    look = _Lookup(pyramid)
    padded_rays = Rays(rays.row + 1.0, rays.col + 1.0, rays.z, rays.d_row, rays.d_col, rays.d_z, rays.t_end)
    cell_dt = (1.0 / np.maximum(cells_per_t, 1e-9)).astype(np.float32)  # one cell horizontally
    t_free = np.zeros(n, dtype=np.float32)  # every t below this is known to be above the surface
    lo = np.zeros(n, dtype=np.float32)
    hi = np.asarray(rays.t_end, dtype=np.float32).copy()
    n_fine = int(np.ceil(_FINE_SEGMENTS * BLOCK / FINE_STEP_CELLS))
    frac = (np.arange(1, n_fine + 1, dtype=np.float32) / n_fine)[:, None]
    active = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        if active.size == 0:
            break
        ray = padded_rays.select(active)
        dt = cell_dt[active]
        start = _coarse_candidates(look, ray, t_free[active], BLOCK * dt)
        seg_end = np.minimum(start + (_FINE_SEGMENTS * BLOCK) * dt, ray.t_end)
        ts = start + (seg_end - start) * frac  # (n_fine, n_active)
        h = look.height(ray.row + ts * ray.d_row, ray.col + ts * ray.d_col)
        hit = ray.z + ts * ray.d_z <= h + 1e-4
        hit[-1] |= seg_end >= ray.t_end
        found, first = _first_true(hit)
        cols = np.flatnonzero(found)
        idx = active[cols]
        hi[idx] = ts[first[cols], cols]
        lo[idx] = np.where(first[cols] > 0, ts[np.maximum(first[cols] - 1, 0), cols], start[cols])
        t_free[active[~found]] = seg_end[~found]
        active = active[~found]
    if active.size:  # pathological: give up on finding anything but the ground
        lo[active] = hi[active]
    all_rays = padded_rays.select(np.arange(n))
    for _ in range(_REFINE):
        mid = 0.5 * (lo + hi)
        h = look.height(all_rays.row + mid * all_rays.d_row, all_rays.col + mid * all_rays.d_col)
        below = all_rays.z + mid * all_rays.d_z <= h + 1e-4
        hi = np.where(below, mid, hi)
        lo = np.where(below, lo, mid)
    return np.stack([lo, hi], axis=1).astype(np.float64)


def _coarse_candidates(look: _Lookup, ray: Rays, t_start: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Per ray, the start of the first coarse segment that may hit (all before is free)."""
    out = np.empty(len(t_start), dtype=np.float32)
    todo = np.arange(len(t_start))
    base = t_start.copy()
    chunk = 4
    while todo.size:
        ks = np.arange(chunk, dtype=np.float32)[:, None]
        chunk = min(2 * chunk, _COARSE_CHUNK)
        r = ray if todo.size == len(t_start) else ray.select(todo)
        d = dt[todo]
        t_a = base[todo] + ks * d  # segment starts, (chunk, n_todo)
        t_b = np.minimum(t_a + d, r.t_end)
        bound = look.bound(r.row + t_a * r.d_row, r.col + t_a * r.d_col)
        maybe = (r.z + t_b * r.d_z <= bound) | (t_b >= r.t_end)
        found, first = _first_true(maybe)
        cols = np.flatnonzero(found)
        out[todo[cols]] = t_a[first[cols], cols]
        base[todo[~found]] = t_a[-1, ~found] + d[~found]
        todo = todo[~found]
    return out
