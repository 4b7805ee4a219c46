"""Local providers: a panorama folder with its catalogue, an XYZ tile folder, an MBTiles file.

Panorama catalogue (CSV or JSON list of objects), one row per panorama:
``id, lat, lon, heading, path`` where ``path`` is relative to the catalogue's folder (or
absolute) and ``heading`` is the compass direction of the image's first column (optional, 0).
Rows that are broken (missing fields, non-numbers, coordinates out of range, duplicate ids,
bytes that are not UTF-8) are skipped with a reason naming the row, and the rest is used. The
catalogue is read as UTF-8 (a BOM allowed); there is no fallback encoding, since guessing one
would silently turn a Latin-1 file name into a path that does not exist.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import threading
from pathlib import Path

from geobridge.builder.providers.base import Panorama, PanoramaSearch, ProviderError
from geobridge.builder.providers.images import describe_non_image, image_kind
from geobridge.geo import Footprint

CATALOGUE_FIELDS = ("id", "lat", "lon", "heading", "path")
UTF8_ADVICE = "save the catalogue as UTF-8"


class LocalPanoramaCatalogue:
    """Panoramas listed in a CSV/JSON catalogue next to their image files."""

    name = "local-panoramas"

    def __init__(self, catalogue: str | Path):
        self.catalogue = Path(catalogue)
        if not self.catalogue.exists():
            raise ProviderError(
                f"panorama catalogue not found: {self.catalogue} (expected a CSV or JSON with columns "
                f"{', '.join(CATALOGUE_FIELDS)}; `geobridge build products OUT` writes one)"
            )
        self.panoramas: list[Panorama] = []
        self.broken_rows: list[str] = []
        self._load()

    def _rows(self) -> list[dict]:
        raw = self.catalogue.read_bytes()
        if self.catalogue.suffix.lower() == ".json":
            try:
                data = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as err:
                line = raw[: err.start].count(b"\n") + 1
                raise ProviderError(
                    f"panorama catalogue {self.catalogue.name} line {line}: byte "
                    f"0x{raw[err.start]:02x} is not UTF-8; {UTF8_ADVICE}"
                ) from None
            except ValueError as err:
                raise ProviderError(
                    f"panorama catalogue {self.catalogue.name} is not valid JSON: {err}"
                ) from err
            if isinstance(data, dict):
                data = data.get("panoramas", [])
            return [row if isinstance(row, dict) else {} for row in data]
        # undecodable bytes are kept as surrogates, so only the rows holding them are refused (_load)
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", errors="surrogateescape"), newline=""))
        missing = [c for c in ("id", "lat", "lon", "path") if c not in (reader.fieldnames or [])]
        if missing:
            raise ProviderError(
                f"panorama catalogue {self.catalogue.name} lacks column(s) {', '.join(missing)}"
            )
        return list(reader)

    def _load(self) -> None:
        seen: set[str] = set()
        for number, row in enumerate(self._rows(), start=1):
            where = f"{self.catalogue.name} row {number}"
            try:
                _check_utf8(row)
                pano_id = str(row.get("id") or "").strip()
                if not pano_id:
                    raise ValueError("no id")
                if pano_id in seen:
                    raise ValueError(f"duplicate id {pano_id!r}")
                lat, lon = float(row["lat"]), float(row["lon"])
                if not (
                    math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180
                ):
                    raise ValueError(f"coordinates out of range ({row['lat']}, {row['lon']})")
                heading_raw = row.get("heading")
                heading = float(heading_raw) if heading_raw not in (None, "") else 0.0
                rel = str(row.get("path") or "").strip()
                if not rel:
                    raise ValueError("no image path")
            except (KeyError, TypeError, ValueError) as err:
                reason = f"missing field {err}" if isinstance(err, KeyError) else str(err)
                self.broken_rows.append(f"{where}: {reason}")
                continue
            image = Path(rel) if Path(rel).is_absolute() else self.catalogue.parent / rel
            seen.add(pano_id)
            self.panoramas.append(Panorama(pano_id, lat, lon, heading % 360.0, str(image), self.name))

    def search(self, footprint: Footprint) -> PanoramaSearch:
        found = [p for p in self.panoramas if footprint.contains(p.lat, p.lon)]
        return PanoramaSearch(panoramas=found, skipped=list(self.broken_rows))

    def fetch_image(self, panorama: Panorama) -> bytes:
        path = Path(panorama.source)
        if not path.exists():
            raise ProviderError(f"panorama {panorama.id}: image file not found: {path}")
        data = path.read_bytes()
        if image_kind(data) is None:
            raise ProviderError(
                f"panorama {panorama.id}: {path.name} is not an image ({describe_non_image(data)})"
            )
        return data


def _check_utf8(row: dict) -> None:
    """Refuse a catalogue row holding bytes that were not UTF-8 (decoded as surrogates)."""
    for value in row.values():
        text = value if isinstance(value, str) else ""
        bad = next((c for c in text if "\udc80" <= c <= "\udcff"), None)
        if bad is not None:
            raw = text.encode("utf-8", "surrogateescape")
            raise ValueError(f"byte 0x{ord(bad) - 0xDC00:02x} in {raw!r} is not UTF-8; {UTF8_ADVICE}")


class XYZDirectory:
    """Tiles stored as ``root/{z}/{x}/{y}.<ext>``."""

    name = "xyz-dir"

    def __init__(self, root: str | Path, extension: str = "png"):
        self.root = Path(root)
        self.extension = extension.lstrip(".")
        if not self.root.is_dir():
            raise ProviderError(
                f"tile directory not found: {self.root} (expected {{z}}/{{x}}/{{y}}.{self.extension})"
            )

    def get_tile(self, z: int, x: int, y: int) -> bytes:
        path = self.root / str(z) / str(x) / f"{y}.{self.extension}"
        if not path.exists():
            raise ProviderError(f"tile {z}/{x}/{y} missing from {self.root}")
        data = path.read_bytes()
        if image_kind(data) is None:
            raise ProviderError(f"tile {z}/{x}/{y}: {describe_non_image(data)}")
        return data


class MBTiles:
    """Tiles in an MBTiles file (SQLite table ``tiles``; rows counted from the south, TMS)."""

    name = "mbtiles"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ProviderError(f"MBTiles file not found: {self.path}")
        self._local = threading.local()
        try:
            self._connection().execute(
                "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles LIMIT 1"
            )
        except sqlite3.DatabaseError as err:
            raise ProviderError(f"{self.path.name} is not an MBTiles file ({err})") from err

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._local.conn = conn
        return conn

    def get_tile(self, z: int, x: int, y: int) -> bytes:
        tms_row = (2**z - 1) - y
        row = (
            self._connection()
            .execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, tms_row),
            )
            .fetchone()
        )
        if row is None:
            raise ProviderError(f"tile {z}/{x}/{y} missing from {self.path.name}")
        data = bytes(row[0])
        if image_kind(data) is None:
            raise ProviderError(f"tile {z}/{x}/{y} in {self.path.name}: {describe_non_image(data)}")
        return data


def write_mbtiles(path: str | Path, tiles: dict[tuple[int, int, int], bytes], name: str = "tiles") -> Path:
    """Write XYZ tiles {(z, x, y): bytes} to a new MBTiles file (used by products and tests)."""
    from geobridge.atomic import atomic_path

    with atomic_path(path) as tmp:
        conn = sqlite3.connect(tmp)
        conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        conn.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)"
        )
        conn.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", [("name", name), ("format", "png")])
        conn.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, (2**z - 1) - y, sqlite3.Binary(data)) for (z, x, y), data in tiles.items()],
        )
        conn.commit()
        conn.close()
    return Path(path)
