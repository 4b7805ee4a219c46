"""Completing drone images into drone <-> satellite (+ street) records.

Two kinds of drone images know their ground: a released GeoLoc drone subset, whose file names
carry each image's footprint box (south, west, north, east in degrees, read by a configurable
regular expression with those four named groups), and a folder of geotagged drone photos, whose
EXIF GPS and DJI XMP tags give the camera's position, height and gimbal pitch (the footprint is
the ground a camera of ``hfov_deg`` sees from that height, larger for an oblique photo).

For each drone image this fetches the satellite image of the footprint and the nearest panorama
within ``search_radius_m`` of its centre, and writes the GeoLoc layout
(``OUT/<split>/{drone,street,satellite}/<stem>.png``, ``text.csv``) with a manifest. The split is
taken from the image's folder when it is ``train``, ``val`` or ``test``. Images that cannot be
placed or read, or whose satellite image cannot be fetched, are skipped with their reason; a
missing panorama leaves the street view empty, with its reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.atomic import atomic_path, atomic_write_text
from geobridge.builder.config import DronePhotoSettings, DroneSubsetSettings
from geobridge.builder.providers.base import PanoramaProvider, ProviderError, SatelliteProvider
from geobridge.data.photo_metadata import PhotoMetadata, read_photo_metadata
from geobridge.geo import Footprint, haversine_m
from geobridge.images import ImageError, open_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DroneImage:
    """A drone image, the ground footprint it shows, and what else is known of it."""

    path: Path
    footprint: Footprint
    split: str
    extra: dict[str, Any] = field(default_factory=dict)  # manifest columns (e.g. the photo's tags)
    max_side_px: int | None = None  # stored downsampled to this longest side (None: as it is)


@dataclass
class CompletionResult:
    manifest: Path
    completed: int = 0
    without_street: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)


def parse_footprint(name: str, pattern: str) -> Footprint:
    """The footprint box in a file name; `ValueError` naming the problem otherwise."""
    match = re.search(pattern, name)
    if match is None:
        raise ValueError(f"file name {name!r} does not match the footprint pattern")
    s, w, n, e = (float(match.group(k)) for k in ("south", "west", "north", "east"))
    if not (-90 <= s < n <= 90 and -180 <= w < e <= 180):
        raise ValueError(f"file name {name!r} gives an invalid box (S {s}, W {w}, N {n}, E {e})")
    return Footprint(west=w, south=s, east=e, north=n)


def _image_files(root: Path) -> list[tuple[Path, str]]:
    """Image files under ``root`` with their split (from a train/val/test folder, else train)."""
    found = []
    for path in sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        folders = path.relative_to(root).parts[:-1]
        split = next((part for part in folders if part in ("train", "val", "test")), "train")
        found.append((path, split))
    return found


def find_drone_images(root: Path, pattern: str) -> tuple[list[DroneImage], list[dict]]:
    """Drone images under ``root`` with parsed footprints, and the files that did not parse."""
    images, skipped = [], []
    for path, split in _image_files(root):
        try:
            images.append(DroneImage(path, parse_footprint(path.stem, pattern), split))
        except ValueError as err:
            skipped.append({"item": str(path.relative_to(root)), "reason": str(err)})
    return images, skipped


def photo_footprint(meta: PhotoMetadata, settings: DronePhotoSettings) -> Footprint:
    """The ground around the photo's position that its camera sees: ``2 h tan(hfov / 2)`` a side
    from height ``h`` above take-off, times ``oblique_scale`` when the gimbal is not pointing down."""
    assert meta.lat is not None and meta.lon is not None
    height = (
        meta.relative_altitude_m
        if meta.relative_altitude_m and meta.relative_altitude_m > 0
        else settings.default_altitude_m
    )
    size = 2 * height * math.tan(math.radians(settings.hfov_deg) / 2)
    if meta.view_kind == "oblique":
        size *= settings.oblique_scale
    return Footprint.around(meta.lat, meta.lon, size)


def find_geotagged_photos(root: Path, settings: DronePhotoSettings) -> tuple[list[DroneImage], list[dict]]:
    """Photos under ``root`` whose tags give a position, and the files that do not (with why)."""
    images, skipped = [], []
    for path, split in _image_files(root):
        item = str(path.relative_to(root))
        try:
            meta = read_photo_metadata(path)
        except (OSError, ValueError, SyntaxError) as err:
            skipped.append({"item": item, "reason": f"unreadable photo: {err}"})
            continue
        if meta.position is None:
            skipped.append({"item": item, "reason": "no GPS position in its EXIF tags"})
            continue
        extra = {
            "view_kind": meta.view_kind,
            "gimbal_pitch_deg": meta.gimbal_pitch_deg,
            "gimbal_yaw_deg": meta.gimbal_yaw_deg,
            "flight_yaw_deg": meta.flight_yaw_deg,
            "relative_altitude_m": meta.relative_altitude_m,
            "gps_altitude_m": meta.altitude_m,
        }
        images.append(DroneImage(path, photo_footprint(meta, settings), split, extra, settings.max_side_px))
    return images, skipped


def complete_drone_subset(
    drone_root: str | Path,
    out: str | Path,
    satellite: SatelliteProvider,
    panoramas: PanoramaProvider | None,
    settings: DroneSubsetSettings,
    progress: bool = True,
) -> CompletionResult:
    """Records for a released drone subset whose file names give the footprints."""
    drone_root = _existing_folder(drone_root)
    images, skipped = find_drone_images(drone_root, settings.name_pattern)
    return complete_drone_images(
        images, skipped, out, satellite, panoramas, settings, progress, report="complete-drone.json"
    )


def complete_drone_photos(
    photo_root: str | Path,
    out: str | Path,
    satellite: SatelliteProvider,
    panoramas: PanoramaProvider | None,
    settings: DroneSubsetSettings,
    photos: DronePhotoSettings,
    progress: bool = True,
) -> CompletionResult:
    """Records around each geotagged drone photo of a folder (position and pose from its tags)."""
    photo_root = _existing_folder(photo_root)
    images, skipped = find_geotagged_photos(photo_root, photos)
    return complete_drone_images(
        images, skipped, out, satellite, panoramas, settings, progress, report="drone-photos.json"
    )


def _existing_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"drone folder not found: {folder}")
    return folder


def _drone_pixels(drone: DroneImage) -> np.ndarray:
    """The drone image as RGB, upright (EXIF orientation) and within ``max_side_px`` (a JPEG decoded
    at a reduced scale); an ImageError when it is unreadable or over the pixel budget."""
    return np.asarray(open_image(drone.path, max_side=drone.max_side_px, upright=True))


def complete_drone_images(
    images: list[DroneImage],
    skipped: list[dict],
    out: str | Path,
    satellite: SatelliteProvider,
    panoramas: PanoramaProvider | None,
    settings: DroneSubsetSettings,
    progress: bool = True,
    report: str = "complete-drone.json",
) -> CompletionResult:
    """Fetch the satellite image and nearest panorama of every drone image; write the layout."""
    from PIL import Image
    from tqdm.auto import tqdm

    from geobridge.builder.pipeline import PANORAMA_MAX_SIDE_PX, north_first, write_text_csv
    from geobridge.builder.providers.images import decode_rgb
    from geobridge.records import Location, write_manifest

    out = Path(out)
    result = CompletionResult(manifest=out / "manifest.parquet", skipped=skipped)
    locations = []
    for drone in tqdm(images, desc="complete drone images", disable=not progress):
        lat, lon = drone.footprint.centre
        size_m = max(drone.footprint.width_m, drone.footprint.height_m)
        stem = drone.path.stem
        try:  # read before writing anything, so an unreadable image leaves nothing behind
            pixels = _drone_pixels(drone)
        except ImageError as err:
            result.skipped.append({"item": stem, "reason": f"unreadable drone image: {err.problem}"})
            continue
        try:
            sat = satellite.fetch(lat, lon, size_m, settings.size_px)
        except ProviderError as err:
            result.skipped.append({"item": stem, "reason": f"satellite: {err}"})
            continue
        paths = {
            "drone": out / drone.split / "drone" / f"{stem}.png",
            "satellite": out / drone.split / "satellite" / f"{stem}.png",
        }
        with atomic_path(paths["drone"]) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        with atomic_path(paths["satellite"]) as tmp:
            Image.fromarray(sat).save(tmp, format="PNG")
        extra = {"size_m": size_m, "pano_id": None, "pano_distance_m": None, **drone.extra}
        try:
            if panoramas is None:
                raise ProviderError("no panorama source configured")
            pano = nearest_panorama(panoramas, lat, lon, settings.search_radius_m)
            data = panoramas.fetch_image(pano)
            rgb = north_first(
                decode_rgb(data, what=f"panorama {pano.id}", max_side=PANORAMA_MAX_SIDE_PX), pano.heading_deg
            )
            paths["street"] = out / drone.split / "street" / f"{stem}.png"
            with atomic_path(paths["street"]) as tmp:
                Image.fromarray(rgb).save(tmp, format="PNG")
            extra.update(pano_id=pano.id, pano_distance_m=float(haversine_m(lat, lon, pano.lat, pano.lon)))
        except ProviderError as err:
            result.without_street.append({"item": stem, "reason": str(err)})
        locations.append(Location(id=stem, lat=lat, lon=lon, split=drone.split, paths=paths, extra=extra))
    result.completed = len(locations)
    for split in sorted({loc.split for loc in locations}):
        write_text_csv(out / split / "text.csv", [loc for loc in locations if loc.split == split])
    write_manifest(locations, result.manifest)
    atomic_write_text(
        out / report,
        json.dumps(
            {
                "completed": result.completed,
                "without_street": result.without_street,
                "skipped": result.skipped,
            },
            indent=1,
        ),
    )
    return result


def nearest_panorama(provider: PanoramaProvider, lat: float, lon: float, radius_m: float):
    """The panorama closest to (lat, lon) within ``radius_m``; `ProviderError` when none is."""
    found = provider.search(Footprint.around(lat, lon, 2 * radius_m))
    candidates = [(haversine_m(lat, lon, p.lat, p.lon), p) for p in found.panoramas]
    candidates = [(d, p) for d, p in candidates if d <= radius_m]
    if not candidates:
        raise ProviderError(f"no panorama within {radius_m:g} m of ({lat:.6f}, {lon:.6f})")
    return min(candidates, key=lambda dp: dp[0])[1]
