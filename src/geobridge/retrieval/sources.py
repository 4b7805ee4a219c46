"""Where the images of a gallery (and of located queries) come from, with their coordinates.

Accepted inputs:

- a manifest file (``manifest.parquet`` or ``.csv`` with columns id, lat, lon, and a path column
  per view; see ``geobridge.records``), or a folder that holds ``manifest.parquet``;
- a folder of images (``<id>.png`` / ``.jpg``...) with a coordinates table beside them or in a
  parent folder: ``text.csv`` (the GeoLoc layout's ``{split}/text.csv``) or ``locations.csv``,
  with columns id, lat, lon. The id of an image is its file name without the extension.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from geobridge.records import Location, ManifestError, read_manifest
from geobridge.views import View

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
COORDINATE_TABLES = ("text.csv", "locations.csv")


class SourceError(ValueError):
    """The gallery's images or their coordinates cannot be found."""


def read_locations(source: str | Path, view: View | str, split: str | None = None) -> list[Location]:
    """Locations with an image of ``view`` from a manifest or an image folder (see module doc)."""
    view = View.parse(view)
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source} does not exist: pass a manifest (.parquet/.csv) or a folder of images")
    if source.is_file() or (source / "manifest.parquet").exists():
        try:
            locations = read_manifest(source, split=split)
        except ManifestError as err:
            raise SourceError(str(err)) from None
        if view is View.TEXT:
            found = [loc for loc in locations if loc.text]
        else:
            found = [loc for loc in locations if loc.path(view) is not None]
        if not found:
            where = f" in split {split!r}" if split else ""
            raise SourceError(f"manifest {source} has no {view.value} entries{where}")
        return _with_world_footprint(found, source, view)
    return _locations_from_folder(source, view)


def _with_world_footprint(locations: list[Location], source: Path, view: View) -> list[Location]:
    """A rendered world's north-up tiles (satellite, map) cover ``ground_m`` metres, stated in its
    ``world.json``: record it on each location (the map draws each tile over its footprint)."""
    signature = (source if source.is_dir() else source.parent) / "world.json"
    if view not in (View.SATELLITE, View.MAP) or not signature.is_file():
        return locations
    try:
        ground_m = float(json.loads(signature.read_text(encoding="utf-8"))["ground_m"])
    except (OSError, ValueError, KeyError, TypeError):
        return locations
    return [
        loc
        if "ground_m" in loc.extra
        else dataclasses.replace(loc, extra={**loc.extra, "ground_m": ground_m})
        for loc in locations
    ]


def _locations_from_folder(folder: Path, view: View) -> list[Location]:
    import pandas as pd

    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SourceError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no manifest.parquet")
    table_path = _find_coordinate_table(folder)
    if table_path is None:
        raise SourceError(
            f"no coordinates for the images in {folder}: put a locations.csv (columns id, lat, lon; "
            "id = image file name without extension) beside them, or pass a manifest"
        )
    table = pd.read_csv(table_path, dtype={"id": str})
    missing = [c for c in ("id", "lat", "lon") if c not in table.columns]
    if missing:
        raise SourceError(f"{table_path} lacks column(s) {', '.join(missing)}")
    rows = {str(r["id"]): r for r in table.to_dict("records")}
    out, unknown = [], []
    for image in images:
        row = rows.get(image.stem)
        if row is None:
            unknown.append(image.name)
            continue
        text = row.get("text")
        out.append(
            Location(
                id=image.stem,
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                text=text if isinstance(text, str) else "",
                paths={view.value: image.resolve()},
            )
        )
    if unknown:
        raise SourceError(f"{table_path} has no coordinates for {len(unknown)} image(s), e.g. {unknown[0]}")
    return out


def _find_coordinate_table(folder: Path) -> Path | None:
    for candidate in (folder, *list(folder.resolve().parents)[:2]):
        for name in COORDINATE_TABLES:
            if (candidate / name).is_file():
                return candidate / name
    return None
