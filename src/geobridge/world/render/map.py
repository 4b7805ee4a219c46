"""Map view: a cartographic, north-up rendering of the world (the street-map modality of GLEAM-C)
in an OpenStreetMap-like palette: no shading, no shadows, no noise; roads carry a darker casing."""

from __future__ import annotations

import numpy as np

from geobridge.world.model import LandCover, RoadClass, World
from geobridge.world.render.raster import CellWindow, crop_axes, nearest_window

# Palette (RGB), close to the OpenStreetMap Carto style.
MAP_PALETTE: dict[str, tuple[int, int, int]] = {
    "background": (242, 239, 233),
    "grass": (205, 235, 176),
    "park": (200, 250, 204),
    "tree": (173, 209, 158),
    "water": (170, 211, 223),
    "building": (217, 208, 201),
    "building_outline": (196, 182, 171),
    "paved": (221, 221, 232),
    "bare": (238, 229, 220),
    "road_major": (252, 214, 164),
    "road_major_casing": (196, 140, 60),
    "road_secondary": (247, 250, 191),
    "road_secondary_casing": (150, 160, 60),
    "road_residential": (255, 255, 255),
    "road_residential_casing": (187, 187, 187),
    "footway": (250, 128, 114),
    "bridge_casing": (90, 90, 90),
}
_NAMES = list(MAP_PALETTE)
_COLOURS = np.array([MAP_PALETTE[n] for n in _NAMES], dtype=np.uint8)
_ID = {n: i for i, n in enumerate(_NAMES)}

_AREA_STYLE = {
    LandCover.GRASS: "grass",
    LandCover.ROAD: "road_residential",
    LandCover.BUILDING: "building",
    LandCover.WATER: "water",
    LandCover.PARK: "park",
    LandCover.TREE: "tree",
    LandCover.BRIDGE: "road_residential",
    LandCover.PAVED: "paved",
    LandCover.BARE: "bare",
}
_ROAD_STYLE = {
    RoadClass.MAJOR: ("road_major", "road_major_casing"),
    RoadClass.SECONDARY: ("road_secondary", "road_secondary_casing"),
    RoadClass.RESIDENTIAL: ("road_residential", "road_residential_casing"),
    RoadClass.FOOTWAY: ("footway", "footway"),
}


def _lut(mapping: dict[int, str], default: str) -> np.ndarray:
    table = np.full(256, _ID[default], dtype=np.uint8)
    for key, name in mapping.items():
        table[int(key)] = _ID[name]
    return table


_AREA_LUT = _lut({int(k): v for k, v in _AREA_STYLE.items()}, "background")
_FILL_LUT = _lut({int(k): v[0] for k, v in _ROAD_STYLE.items()}, "road_residential")
_CASING_LUT = _lut({int(k): v[1] for k, v in _ROAD_STYLE.items()}, "road_residential_casing")


def _edge(mask: np.ndarray) -> np.ndarray:
    """True on cells of ``mask`` with a 4-neighbour outside it (window borders excluded)."""
    edge = np.zeros_like(mask)
    inner = mask[1:-1, 1:-1]
    outside = ~mask[:-2, 1:-1] | ~mask[2:, 1:-1] | ~mask[1:-1, :-2] | ~mask[1:-1, 2:]
    edge[1:-1, 1:-1] = inner & outside
    return edge


def map_style_ids(world: World, window: CellWindow) -> np.ndarray:
    """Palette index per window cell (``MAP_PALETTE`` order)."""
    landcover = window.take(world.landcover)
    road_class = window.take(world.road_class)
    style = _AREA_LUT[landcover]
    is_bridge = landcover == LandCover.BRIDGE
    is_road = (road_class > 0) | (landcover == LandCover.ROAD) | is_bridge
    style = np.where(is_road, _FILL_LUT[road_class], style)
    casing = _edge(is_road) & (road_class != RoadClass.FOOTWAY)
    style = np.where(casing, _CASING_LUT[road_class], style)
    style = np.where(_edge(is_bridge), _ID["bridge_casing"], style)
    building = landcover == LandCover.BUILDING
    style = np.where(_edge(building), _ID["building_outline"], style)
    return style.astype(np.uint8)


def render_map(
    world: World, lat: float, lon: float, size_px: int = 128, ground_m: float = 120.0
) -> np.ndarray:
    """Render the cartographic north-up tile of ``ground_m`` metres centred on (lat, lon).

    Same footprint convention as :func:`render_satellite`; returns ``(size_px, size_px, 3)`` uint8
    whose every pixel is a ``MAP_PALETTE`` colour (nearest-cell sampling keeps the palette exact).
    """
    if size_px <= 0 or ground_m <= 0:
        raise ValueError(f"size_px and ground_m must be positive, got {size_px}, {ground_m}")
    rows, cols = crop_axes(world, lat, lon, size_px, ground_m)
    window = CellWindow.covering(rows, cols, margin=2)
    style = map_style_ids(world, window)
    inside = window.inside_mask(world.shape)
    style = np.where(inside, style, _ID["background"])
    return _COLOURS[nearest_window(style, window, rows, cols)]
