"""GeoLoc (GeoBridge, arXiv 2512.02697): co-located drone, street and satellite views plus one text.

On-disk layout (as published; ``root`` is the ``data/`` folder, or the folder holding it)::

    root/
      train/ val/ test/
        drone/<stem>.<ext>
        satellite/<stem>.<ext>
        street/<stem>.<ext>
        map/<stem>.<ext>                # optional (our world datasets add it)
        text.csv                        # id,text (optionally lat,lon)

The text CSV has columns ``id,text`` (and ``lat,lon`` when known). It is looked up as
``<split>/text.csv``, ``<split>.csv``, ``<split>_text.csv`` and ``text.csv`` (with a ``split``
column), in that order, or given with ``text_csv``. The three views of a location share a file
stem, the positive convention of GeoBridge's released evaluation code; ``id_pattern`` (a regex
with a group ``id``) extracts the location id from a stem when the names carry more.

Coordinates: from the CSV's ``lat``/``lon`` when present; otherwise from the file names of
``coordinate_view`` (drone, as GeoBridge's evaluation reads the footprint box from drone file
names) with ``coordinate_pattern``: a regex with groups ``lat``, ``lon`` (a point) or ``lat1``,
``lon1``, ``lat2``, ``lon2`` (two opposite corners of the footprint box; the centre is used).
The default pattern, :data:`FOOTPRINT_BOX_PATTERN`, reads four decimal numbers (each with a
decimal point) separated by ``_`` or ``,`` at the end of the stem as lat1, lon1, lat2, lon2.
This is an assumption about the release's naming: pass your own pattern if the names differ. Without coordinates, the
distance metrics (L@50...) are left out of the report. Default protocol ``geobridge``.

Only the drone images are redistributed (see the GeoBridge project page); street and satellite
images must be re-fetched, e.g. with ``geobridge build run``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from geobridge.data.benchmarks.base import list_images
from geobridge.data.benchmarks.locations import LocationBenchmark
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.records import Location
from geobridge.views import View

_NUMBER = r"-?\d+\.\d+"
#: Default coordinates in a file stem: ``..._<lat1>_<lon1>_<lat2>_<lon2>`` (box corners).
FOOTPRINT_BOX_PATTERN = (
    rf"(?P<lat1>{_NUMBER})[_,](?P<lon1>{_NUMBER})[_,](?P<lat2>{_NUMBER})[_,](?P<lon2>{_NUMBER})$"
)
GEOLOC_FOLDERS: tuple[View, ...] = (View.DRONE, View.STREET, View.SATELLITE, View.MAP)


def coordinates_from_name(stem: str, pattern: re.Pattern[str]) -> tuple[float, float] | None:
    """(lat, lon) from a file stem: a point, or the centre of a two-corner box; None if no match."""
    match = pattern.search(stem)
    if match is None:
        return None
    groups = match.groupdict()
    if groups.get("lat") is not None and groups.get("lon") is not None:
        return float(groups["lat"]), float(groups["lon"])
    if all(groups.get(k) is not None for k in ("lat1", "lon1", "lat2", "lon2")):
        lat = (float(groups["lat1"]) + float(groups["lat2"])) / 2
        lon = (float(groups["lon1"]) + float(groups["lon2"])) / 2
        return lat, lon
    raise ValueError(
        f"coordinate pattern {pattern.pattern!r} must have groups lat, lon or lat1, lon1, lat2, lon2"
    )


@register_benchmark
class GeoLoc(LocationBenchmark):
    """GeoLoc's folder layout: GeoBridge's six image directions and text to each view."""

    name = "geoloc"
    homepage = "the GeoBridge project page (arXiv 2512.02697)"
    layout = "{train,val,test}/{drone,satellite,street}/<stem>.<ext> and a CSV id,text (e.g. test/text.csv)."

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        text_csv: str | Path | None = None,
        id_pattern: str | None = None,
        coordinate_pattern: str | None = FOOTPRINT_BOX_PATTERN,
        coordinate_view: str = "drone",
    ) -> None:
        root = Path(root).expanduser()
        if not (root / split).is_dir() and (root / "data" / split).is_dir():
            root = root / "data"
        super().__init__(root, split=split)
        self.text_csv = Path(text_csv) if text_csv is not None else None
        self.id_pattern = re.compile(id_pattern) if id_pattern else None
        if self.id_pattern is not None and "id" not in self.id_pattern.groupindex:
            raise ValueError(f"id_pattern {id_pattern!r} needs a named group 'id'")
        self.coordinate_pattern = re.compile(coordinate_pattern) if coordinate_pattern else None
        self.coordinate_view = View.parse(coordinate_view)
        split_dir = self.require(self.root / split, f"split folder {split}", folder=True)
        if not any((split_dir / v.value).is_dir() for v in GEOLOC_FOLDERS):
            raise self.missing(split_dir / "drone", "view folder (drone, satellite or street)")
        if not self.locations():
            raise self.missing(split_dir / "drone" / "<stem>.jpg", f"images of split {split}")

    def location_id(self, stem: str) -> str:
        if self.id_pattern is None:
            return stem
        match = self.id_pattern.search(stem)
        return match.group("id") if match else stem

    def find_text_csv(self, split: str) -> Path | None:
        """The text CSV of ``split``: the ``text_csv`` option, or the first conventional name found."""
        if self.text_csv is not None:
            given = self.text_csv if self.text_csv.is_absolute() else self.root / self.text_csv
            return self.require(given, "text CSV")
        candidates = (
            self.root / split / "text.csv",
            self.root / f"{split}.csv",
            self.root / f"{split}_text.csv",
            self.root / "text.csv",
        )
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return None

    def read_texts(self, split: str) -> dict[str, dict]:
        """id -> CSV row (text and, when present, lat/lon) for ``split``."""
        import pandas as pd

        path = self.find_text_csv(split)
        if path is None:
            return {}
        frame = pd.read_csv(path, dtype={"id": str})
        missing = [c for c in ("id", "text") if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{path} lacks column(s) {', '.join(missing)}: a GeoLoc text CSV has columns id,text"
            )
        if "split" in frame.columns:
            frame = frame[frame["split"] == split]
        return {str(row["id"]): row for row in frame.to_dict("records")}

    def read_locations(self, split: str) -> list[Location]:
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise self.missing(split_dir, f"split folder {split}")
        paths: dict[str, dict[str, Path]] = {}
        stems: dict[str, str] = {}
        for view in GEOLOC_FOLDERS:
            folder = split_dir / view.value
            if not folder.is_dir():
                continue
            for image in list_images(folder):
                ident = self.location_id(image.stem)
                paths.setdefault(ident, {})[view.value] = image
                if view is self.coordinate_view or ident not in stems:
                    stems[ident] = image.stem
        rows = self.read_texts(split)
        out = []
        for ident in sorted(paths):
            row = rows.get(ident, {})
            lat, lon = _finite(row.get("lat")), _finite(row.get("lon"))
            if (lat is None or lon is None) and self.coordinate_pattern is not None:
                found = coordinates_from_name(stems[ident], self.coordinate_pattern)
                if found is not None:
                    lat, lon = found
            text = row.get("text")
            out.append(
                Location(
                    id=ident,
                    lat=math.nan if lat is None else lat,
                    lon=math.nan if lon is None else lon,
                    split=split,
                    text="" if not isinstance(text, str) else text,
                    paths=paths[ident],
                )
            )
        return out


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
