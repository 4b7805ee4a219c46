"""Surface colours of a world as seen from straight up: one base colour per land-cover class and
road class, roof colours per building, a shade for tree crowns by height, and a little seeded
texture. Shared by every world source so that procedural and OSM worlds look alike."""

from __future__ import annotations

import numpy as np

from geobridge.world.model import LandCover, RoadClass

RGB = tuple[int, int, int]

BASE_COLOURS: dict[LandCover, RGB] = {
    LandCover.GRASS: (112, 146, 78),
    LandCover.ROAD: (98, 98, 102),
    LandCover.BUILDING: (150, 150, 150),
    LandCover.WATER: (52, 92, 134),
    LandCover.PARK: (88, 144, 72),
    LandCover.TREE: (46, 92, 46),
    LandCover.BRIDGE: (128, 122, 114),
    LandCover.PAVED: (172, 168, 160),
    LandCover.BARE: (152, 138, 112),
}
ROAD_COLOURS: dict[int, RGB] = {
    RoadClass.MAJOR: (68, 68, 72),
    RoadClass.SECONDARY: (86, 86, 90),
    RoadClass.RESIDENTIAL: (104, 104, 108),
    RoadClass.FOOTWAY: (196, 184, 160),
}


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_cells: float) -> np.ndarray:
    """Smooth value noise in about [-1, 1] with features about ``scale_cells`` across."""
    import cv2

    scale_cells = max(2.0, float(scale_cells))
    gh = int(np.ceil(shape[0] / scale_cells)) + 3
    gw = int(np.ceil(shape[1] / scale_cells)) + 3
    grid = rng.uniform(-1, 1, size=(gh, gw)).astype(np.float32)
    up = cv2.resize(
        grid, (int(round(gw * scale_cells)), int(round(gh * scale_cells))), interpolation=cv2.INTER_CUBIC
    )
    return np.ascontiguousarray(up[: shape[0], : shape[1]], dtype=np.float32)


def paint_surface(
    rng: np.random.Generator,
    landcover: np.ndarray,
    road_class: np.ndarray,
    building_id: np.ndarray,
    roofs: np.ndarray,
    height: np.ndarray,
) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 colour raster: class colours, ``roofs[building_id]`` on
    buildings, tree crowns lighter where taller, plus low-frequency and fine seeded texture
    (none on roofs, little on water)."""
    shape = landcover.shape
    colour = np.zeros(shape + (3,), np.uint8)
    for cls, rgb in BASE_COLOURS.items():
        colour[landcover == cls] = rgb
    for road, rgb in ROAD_COLOURS.items():
        colour[(road_class == road) & (landcover == LandCover.ROAD)] = rgb
    b = building_id > 0
    colour[b] = roofs[building_id[b]]
    tree = landcover == LandCover.TREE
    shade = np.clip(height[tree] / 17.0, 0.0, 1.0)
    colour[tree] = np.clip(
        np.array(BASE_COLOURS[LandCover.TREE])[None, :] * (0.8 + 0.35 * shade[:, None]), 0, 255
    ).astype(np.uint8)
    low = smooth_noise(rng, shape, max(4.0, shape[0] / 12.0)) * np.float32(7.0)
    fine = rng.standard_normal(size=shape, dtype=np.float32) * np.float32(3.0)
    for r0 in range(0, shape[0], 512):  # in row chunks: bounded memory on big worlds
        sl = slice(r0, r0 + 512)
        vary = ~b[sl] & (landcover[sl] != LandCover.WATER)
        delta = np.where(vary, low[sl] + fine[sl], low[sl] * np.float32(0.4))
        colour[sl] = np.clip(colour[sl].astype(np.float32) + delta[..., None], 0, 255).astype(np.uint8)
    return colour
