"""View-invariant evidence read from one image by simple colour and gradient rules.

GLEAM-X explains a cross-view match by citing what both images show: how much water, greenery
and built-up land there is, the colour of the roofs, whether the streets form a grid or wind
organically, how tall the surroundings are. This module measures such cues with transparent
heuristics (no learned weights), so an explanation can quote numbers a person can check.

The cues are heuristics. Colour rules are tuned to ordinary daylight imagery (and to the
OpenStreetMap-Carto palette for map tiles); shadows, haze, seasons and unusual roofs move pixels
between classes. Different views also see different extents (a drone's oblique frame reaches
further than a 120 m satellite tile; a panorama sees facades, not roofs). So cues are comparable
across views only coarsely, and only these pairs of cues are compared (see
:mod:`geobridge.explain.compare`):

============================  ==============================================================
query view                    cues compared with the satellite image
============================  ==============================================================
drone                         vegetation, water, built-up, roads/paved fractions; roof colour;
                              street-layout regularity (rotation-invariant peakiness)
map                           vegetation, water, built-up, roads fractions (map palette);
                              layout regularity and the dominant street orientation
                              (both north-up)
street panorama / ground      greenery and water near the horizon vs their satellite
                              fractions; enclosure by buildings (skyline height, sky
                              fraction) vs built-up fraction and shadow fraction
============================  ==============================================================

All functions are pure: ``image`` is an ``(H, W, 3)`` uint8 RGB array (or a PIL image / path,
converted by :func:`as_rgb_array`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.views import View

#: Land-cover classes measured by colour rules, in report order.
LANDCOVER_CLASSES: tuple[str, ...] = ("vegetation", "water", "built", "road", "bare")

#: Named roof colours (RGB prototypes) used to describe roofs.
ROOF_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (172, 78, 56),
    "brown": (140, 108, 84),
    "grey": (128, 128, 134),
    "white": (206, 206, 202),
    "blue-grey": (104, 116, 140),
    "olive": (100, 112, 86),
}

#: OpenStreetMap-Carto-like palette of map tiles, grouped into the land-cover classes above.
MAP_PALETTE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "vegetation": ((205, 235, 176), (200, 250, 204), (173, 209, 158)),
    "water": ((170, 211, 223),),
    "built": ((217, 208, 201), (196, 182, 171)),
    "road": (
        (252, 214, 164),
        (247, 250, 191),
        (255, 255, 255),
        (187, 187, 187),
        (196, 140, 60),
        (150, 160, 60),
        (250, 128, 114),
        (221, 221, 232),
    ),
    "bare": ((238, 229, 220), (242, 239, 233)),
}

ORIENTATION_BINS = 36  # 5-degree bins over [0, 180)


@dataclass(frozen=True)
class LayoutCues:
    """Edge-orientation structure: is the street pattern a regular grid or organic?"""

    dominant_angle_deg: float  # strongest edge orientation, in [0, 90) (a grid has two, 90 deg apart)
    regularity: float  # share of edge energy within +-10 deg of the dominant axis pair (0.22 = uniform)
    edge_density: float  # mean gradient magnitude / 255
    entropy_bits: float  # grey-level histogram entropy (texture richness), 0..8


@dataclass(frozen=True)
class SkylineCues:
    """What a ground-level view shows above and at the horizon."""

    sky_fraction: float  # share of the upper half that is sky
    skyline_mean_deg: (
        float  # mean elevation of the skyline over all columns (panorama) or its height share x 90 (photo)
    )
    skyline_max_deg: float
    enclosed_fraction: float  # share of columns whose skyline is above 10 degrees (tall, close buildings)
    horizon_vegetation: float  # greenery in the band around the horizon
    horizon_water: float  # water-coloured ground below the horizon


@dataclass(frozen=True)
class ImageCues:
    """All cues of one image. ``landcover`` fractions sum to 1 over the measured area."""

    view: str
    landcover: dict[str, float]
    roof_colours: dict[str, float]  # share of built-up pixels per named colour, largest first
    shadow_fraction: float  # very dark pixels (long building shadows => tall buildings)
    layout: LayoutCues
    skyline: SkylineCues | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dominant_roof(self) -> str | None:
        return next(iter(self.roof_colours), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- input


def as_rgb_array(image: Any) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 array from an array, a PIL image or a path; a clear error otherwise."""
    if isinstance(image, (str, Path)):
        from geobridge.images import open_image

        if not Path(image).is_file():
            raise FileNotFoundError(f"image not found: {image}")
        return np.asarray(open_image(image), dtype=np.uint8)  # ImageError (a ValueError) names the file
    if hasattr(image, "convert"):  # PIL image
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 8:
        raise ValueError(f"expected an (H, W, 3) RGB image of at least 8x8 pixels, got shape {array.shape}")
    return np.ascontiguousarray(array[..., :3]).astype(np.uint8, copy=False)


# ----------------------------------------------------------------------------- colour rules


def classify_photo_pixels(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of land-cover classes for overhead photos (satellite, drone) by colour rules.

    vegetation: green dominates; water: blue clearly dominates; road/paved: low saturation and
    not bright (asphalt, concrete, dark shadow); bare: desaturated yellow-brown; built-up: the
    rest (coloured or bright roofs). Grey roofs therefore count as paved: a known coarse spot.
    """
    x = rgb.astype(np.int16)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hi, lo = x.max(axis=2), x.min(axis=2)
    vegetation = (g > r + 8) & (g >= b + 4)
    water = (b > r + 35) & (b > g + 12) & ~vegetation
    grey = (hi - lo < 22) & (hi < 182)
    road = grey & ~vegetation & ~water
    bare = (r > b + 25) & (r - g < 22) & (r >= g) & (hi >= 110) & (hi < 210) & ~road & ~vegetation
    built = ~(vegetation | water | road | bare)
    return {"vegetation": vegetation, "water": water, "built": built, "road": road, "bare": bare}


def classify_map_pixels(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Land-cover masks of a map tile: each pixel goes to the class of its nearest palette colour."""
    names, protos = [], []
    for name, colours in MAP_PALETTE.items():
        for colour in colours:
            names.append(name)
            protos.append(colour)
    protos_arr = np.asarray(protos, dtype=np.float32)
    flat = rgb.reshape(-1, 3).astype(np.float32)
    d = ((flat[:, None, :] - protos_arr[None, :, :]) ** 2).sum(axis=2)
    nearest = np.asarray(names)[d.argmin(axis=1)].reshape(rgb.shape[:2])
    return {name: nearest == name for name in LANDCOVER_CLASSES}


def fractions(masks: dict[str, np.ndarray], region: np.ndarray | None = None) -> dict[str, float]:
    """Share of each class over ``region`` (all pixels by default); sums to 1."""
    total = float(region.sum()) if region is not None else float(next(iter(masks.values())).size)
    if total == 0:
        return {name: 0.0 for name in masks}
    return {
        name: float((m & region).sum() if region is not None else m.sum()) / total
        for name, m in masks.items()
    }


def roof_colour_shares(rgb: np.ndarray, built: np.ndarray) -> dict[str, float]:
    """Share of built-up pixels nearest to each named roof colour, largest first (shares >= 5%)."""
    if built.sum() == 0:
        return {}
    names = list(ROOF_COLOURS)
    protos = np.asarray([ROOF_COLOURS[n] for n in names], dtype=np.float32)
    pixels = rgb[built].astype(np.float32)
    nearest = ((pixels[:, None, :] - protos[None]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(nearest, minlength=len(names)) / len(nearest)
    shares = {names[i]: float(counts[i]) for i in np.argsort(-counts) if counts[i] >= 0.05}
    return shares


# ----------------------------------------------------------------------------- structure


def layout_cues(rgb: np.ndarray) -> LayoutCues:
    """Polar histogram of gradient orientations (magnitude-weighted, mod 180 deg) and its peakiness.

    A street grid puts its edge energy on two perpendicular axes, so folding the histogram to
    [0, 90) gives one sharp peak; winding streets spread it. ``regularity`` is the share of
    energy within +-10 degrees of the best axis in the folded histogram (uniform: 20/90 = 0.22).
    """
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    angle = np.degrees(np.arctan2(gy, gx)) % 90.0  # edge orientation folded to [0, 90)
    weights = magnitude.ravel()
    bins = ORIENTATION_BINS // 2  # 5-degree bins over [0, 90)
    hist = np.bincount(
        np.minimum((angle.ravel() / 5.0).astype(int), bins - 1), weights=weights, minlength=bins
    )
    total = hist.sum()
    if total <= 1e-6:
        regularity, dominant = 20.0 / 90.0, 0.0
    else:
        hist = hist / total
        window = np.array([hist[(np.arange(-2, 3) + i) % bins].sum() for i in range(bins)])
        best = int(window.argmax())
        regularity, dominant = float(window[best]), best * 5.0 + 2.5
    counts = np.bincount(grey.astype(np.uint8).ravel(), minlength=256) / grey.size
    nz = counts[counts > 0]
    entropy = float(-(nz * np.log2(nz)).sum())
    return LayoutCues(
        dominant_angle_deg=dominant,
        regularity=regularity,
        edge_density=float(magnitude.mean() / 255.0),
        entropy_bits=entropy,
    )


# ----------------------------------------------------------------------------- ground level


def sky_mask(rgb: np.ndarray) -> np.ndarray:
    """Sky pixels: bright, blue-tinted, connected to the top edge of the image column by column."""
    x = rgb.astype(np.int16)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    skyish = (b > r + 10) & (b >= g) & (b > 120)
    # keep only the run that starts at the top row of every column
    return np.cumprod(skyish, axis=0).astype(bool)


def skyline_cues(rgb: np.ndarray, panorama: bool) -> SkylineCues:
    """Sky fraction, skyline elevation profile, and greenery / water at the horizon.

    For an equirectangular panorama row ``y`` is elevation ``90 - 180 (y + 0.5) / H`` degrees,
    so the horizon is the middle row. For an ordinary ground photo the horizon is assumed in the
    middle too and the skyline "elevation" is its height above the middle in image halves x 90.
    """
    h, w, _ = rgb.shape
    sky = sky_mask(rgb)
    horizon_row = h // 2
    sky_rows = sky.sum(axis=0)  # per column: rows of sky from the top
    elevation = 90.0 - 180.0 * (sky_rows + 0.5) / h  # skyline elevation per column (degrees)
    elevation = np.clip(elevation, 0.0, 90.0)
    masks = classify_photo_pixels(rgb)
    band = slice(max(horizon_row - max(h // 8, 1), 0), min(horizon_row + max(h // 16, 1), h))
    below = slice(horizon_row, h)
    water_below = masks["water"][below] | (sky_like_ground(rgb[below]))
    return SkylineCues(
        sky_fraction=float(sky[:horizon_row].mean()),
        skyline_mean_deg=float(elevation.mean()),
        skyline_max_deg=float(elevation.max()),
        enclosed_fraction=float((elevation > 10.0).mean()),
        horizon_vegetation=float(masks["vegetation"][band].mean()),
        horizon_water=float(water_below.mean()),
    )


def sky_like_ground(rgb: np.ndarray) -> np.ndarray:
    """Ground pixels that mirror the sky (blue, fairly bright): water seen at a grazing angle."""
    x = rgb.astype(np.int16)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return (b > r + 25) & (b > g + 4) & (b > 90)


# ----------------------------------------------------------------------------- entry point


def overhead_region(shape: tuple[int, int], view: View) -> np.ndarray:
    """Which pixels of an overhead image describe the location: all of a satellite or map tile;
    for an oblique drone frame the lower-central part (the top reaches the horizon)."""
    h, w = shape
    region = np.zeros(shape, dtype=bool)
    if view is View.DRONE:
        region[int(0.3 * h) : int(0.95 * h), int(0.15 * w) : int(0.85 * w)] = True
    else:
        region[:] = True
    return region


def extract_cues(image: Any, view: View | str) -> ImageCues:
    """Measure the cues of ``image`` seen from ``view`` (satellite, drone, map, street, ground)."""
    view = View.parse(view)
    if view is View.TEXT:
        raise ValueError("cues are measured on images; text has no pixels")
    rgb = as_rgb_array(image)
    notes: list[str] = []
    if view in (View.STREET, View.GROUND):
        skyline = skyline_cues(rgb, panorama=view is View.STREET)
        ground = slice(rgb.shape[0] // 2, rgb.shape[0])
        masks = classify_photo_pixels(rgb[ground])
        cover = fractions(masks)
        roofs = roof_colour_shares(rgb[ground], masks["built"])
        dark = rgb[ground].max(axis=2) < 50
        layout = layout_cues(rgb)
        notes.append("ground-level view: land cover measured below the horizon only")
        return ImageCues(view.value, cover, roofs, float(dark.mean()), layout, skyline, notes)
    if view is View.MAP:
        masks = classify_map_pixels(rgb)
        cover = fractions(masks)
        return ImageCues(
            view.value, cover, {}, 0.0, layout_cues(rgb), None, ["map palette (OpenStreetMap-Carto-like)"]
        )
    region = overhead_region(rgb.shape[:2], view)
    masks = classify_photo_pixels(rgb)
    cover = fractions(masks, region)
    roofs = roof_colour_shares(rgb, masks["built"] & region)
    dark = (rgb.max(axis=2) < 60) & region
    sub = rgb[np.ix_(region.any(axis=1), region.any(axis=0))]
    if view is View.DRONE:
        notes.append("oblique view: cues from the lower-central part of the frame")
    return ImageCues(
        view.value, cover, roofs, float(dark.sum() / region.sum()), layout_cues(sub), None, notes
    )
