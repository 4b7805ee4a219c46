"""Completing a released GeoLoc drone subset into triples.

GeoLoc redistributes only its drone images; each file name carries the image's ground footprint
box (south, west, north, east in degrees, read here by a configurable regular expression with
those four named groups). For each drone image this fetches the satellite image of the same
footprint and the nearest panorama within ``search_radius_m`` of the footprint's centre, and
writes the GeoLoc layout (``OUT/<split>/{drone,street,satellite}/<stem>.png``, ``text.csv``) with
a manifest. The split is taken from the drone image's folder when it is ``train``, ``val`` or
``test``. Images whose name does not parse, or whose satellite image cannot be fetched, are
skipped with their reason; a missing panorama leaves the street view empty, with its reason.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from geobridge.atomic import atomic_path, atomic_write_text
from geobridge.build.config import DroneSubsetSettings
from geobridge.build.providers.base import PanoramaProvider, ProviderError, SatelliteProvider
from geobridge.geo import Footprint, haversine_m

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DroneImage:
    """A released drone image and the footprint its file name declares."""

    path: Path
    footprint: Footprint
    split: str


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


def find_drone_images(root: Path, pattern: str) -> tuple[list[DroneImage], list[dict]]:
    """Drone images under ``root`` with parsed footprints, and the files that did not parse."""
    images, skipped = [], []
    for path in sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        split = next((part for part in path.relative_to(root).parts[:-1] if part in ("train", "val", "test")), "train")
        try:
            images.append(DroneImage(path, parse_footprint(path.stem, pattern), split))
        except ValueError as err:
            skipped.append({"item": str(path.relative_to(root)), "reason": str(err)})
    return images, skipped


def complete_drone_subset(
    drone_root: str | Path,
    out: str | Path,
    satellite: SatelliteProvider,
    panoramas: PanoramaProvider | None,
    settings: DroneSubsetSettings,
    progress: bool = True,
) -> CompletionResult:
    """Fetch the satellite image and nearest panorama of every drone image; write the layout."""
    from PIL import Image
    from tqdm.auto import tqdm

    from geobridge.build.pipeline import north_first, write_text_csv
    from geobridge.build.providers.images import decode_rgb
    from geobridge.records import Location, write_manifest

    drone_root, out = Path(drone_root), Path(out)
    if not drone_root.is_dir():
        raise FileNotFoundError(f"drone folder not found: {drone_root}")
    images, skipped = find_drone_images(drone_root, settings.name_pattern)
    result = CompletionResult(manifest=out / "manifest.parquet", skipped=skipped)
    locations = []
    for drone in tqdm(images, desc="complete drone subset", disable=not progress):
        lat, lon = drone.footprint.centre
        size_m = max(drone.footprint.width_m, drone.footprint.height_m)
        stem = drone.path.stem
        try:
            sat = satellite.fetch(lat, lon, size_m, settings.size_px)
        except ProviderError as err:
            result.skipped.append({"item": stem, "reason": f"satellite: {err}"})
            continue
        paths = {"drone": out / drone.split / "drone" / f"{stem}.png", "satellite": out / drone.split / "satellite" / f"{stem}.png"}
        with atomic_path(paths["drone"]) as tmp:
            if drone.path.suffix.lower() == ".png":
                shutil.copyfile(drone.path, tmp)
            else:
                Image.open(drone.path).convert("RGB").save(tmp, format="PNG")
        with atomic_path(paths["satellite"]) as tmp:
            Image.fromarray(sat).save(tmp, format="PNG")
        extra = {"size_m": size_m, "pano_id": None, "pano_distance_m": None}
        try:
            if panoramas is None:
                raise ProviderError("no panorama source configured")
            pano = nearest_panorama(panoramas, lat, lon, settings.search_radius_m)
            rgb = north_first(decode_rgb(panoramas.fetch_image(pano), what=f"panorama {pano.id}"), pano.heading_deg)
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
    atomic_write_text(out / "complete-drone.json", json.dumps(
        {"completed": result.completed, "without_street": result.without_street, "skipped": result.skipped}, indent=1))
    return result


def nearest_panorama(provider: PanoramaProvider, lat: float, lon: float, radius_m: float):
    """The panorama closest to (lat, lon) within ``radius_m``; `ProviderError` when none is."""
    found = provider.search(Footprint.around(lat, lon, 2 * radius_m))
    candidates = [(haversine_m(lat, lon, p.lat, p.lon), p) for p in found.panoramas]
    candidates = [(d, p) for d, p in candidates if d <= radius_m]
    if not candidates:
        raise ProviderError(f"no panorama within {radius_m:g} m of ({lat:.6f}, {lon:.6f})")
    return min(candidates, key=lambda dp: dp[0])[1]
