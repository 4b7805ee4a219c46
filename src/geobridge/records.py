"""The location record that travels the whole pipeline, and its manifest file.

A manifest is a Parquet table with one row per location: ``id``, ``split``, ``lat``, ``lon``,
``region``, ``text`` and one column per image view (``drone``, ``street``, ``satellite``,
``map``, ``ground``) holding the image path relative to the manifest's folder, or null when
that view is missing. Extra columns are kept as they are (``extra``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_path, recover_directory
from geobridge.views import IMAGE_VIEWS, View

SPLITS: tuple[str, ...] = ("train", "val", "test")
BASE_COLUMNS: tuple[str, ...] = ("id", "split", "lat", "lon", "region", "text")
VIEW_COLUMNS: tuple[str, ...] = tuple(v.value for v in IMAGE_VIEWS)


@dataclass(frozen=True)
class Location:
    """One place: its id, coordinates, split, the shared text, and per view an image path."""

    id: str
    lat: float
    lon: float
    split: str = "train"
    region: str = ""
    text: str = ""
    paths: Mapping[str, Path | None] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def path(self, view: View | str) -> Path | None:
        """The image path of ``view``, or None when this location lacks it."""
        return self.paths.get(View.parse(view).value)

    def has(self, view: View | str) -> bool:
        view = View.parse(view)
        if view is View.TEXT:
            return bool(self.text)
        return self.path(view) is not None

    @property
    def views(self) -> list[View]:
        """The views present for this location (text included when it has one)."""
        present = [View(name) for name, p in self.paths.items() if p is not None]
        return present + ([View.TEXT] if self.text else [])


class ManifestError(ValueError):
    """A manifest is missing, unreadable, or lacks required columns."""


def write_manifest(locations: Iterable[Location], path: str | Path) -> Path:
    """Write locations as a Parquet manifest (atomically); image paths become relative."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    root = path.parent.resolve()
    rows: dict[str, list] = {c: [] for c in BASE_COLUMNS + VIEW_COLUMNS}
    extra_keys: list[str] = []
    locations = list(locations)
    for loc in locations:
        for key in loc.extra:
            if key not in extra_keys and key not in rows:
                extra_keys.append(key)
    for key in extra_keys:
        rows[key] = []
    for loc in locations:
        rows["id"].append(str(loc.id))
        rows["split"].append(loc.split)
        rows["lat"].append(float(loc.lat))
        rows["lon"].append(float(loc.lon))
        rows["region"].append(loc.region)
        rows["text"].append(loc.text)
        for col in VIEW_COLUMNS:
            p = loc.paths.get(col)
            rows[col].append(None if p is None else _relative(Path(p), root))
        for key in extra_keys:
            rows[key].append(loc.extra.get(key))
    schema_fields = [
        pa.field("id", pa.string()),
        pa.field("split", pa.string()),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("region", pa.string()),
        pa.field("text", pa.string()),
    ] + [pa.field(c, pa.string()) for c in VIEW_COLUMNS]
    table = pa.table({f.name: pa.array(rows[f.name], type=f.type) for f in schema_fields})
    for key in extra_keys:
        table = table.append_column(key, pa.array(rows[key]))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_manifest(path: str | os.PathLike[str], split: str | None = None) -> list[Location]:
    """Read a Parquet (or CSV) manifest; image paths are resolved against its folder."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "manifest.parquet"
    if not path.exists():  # a dataset folder whose replacement a kill interrupted comes back first
        recover_directory(path.parent)
    if not path.exists():
        raise ManifestError(
            f"manifest not found: {path}. Render a world with `geobridge world OUT` or build a "
            "dataset with `geobridge build run`, then pass OUT/manifest.parquet."
        )
    try:
        frame = pd.read_csv(path, dtype={"id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise ManifestError(f"cannot read manifest {path}: {err}") from err
    missing = [c for c in ("id", "lat", "lon") if c not in frame.columns]
    if missing:
        raise ManifestError(f"manifest {path} lacks column(s) {', '.join(missing)}")
    root = path.parent.resolve()
    extra_cols = [c for c in frame.columns if c not in BASE_COLUMNS + VIEW_COLUMNS]
    out: list[Location] = []
    for row in frame.to_dict("records"):
        if split is not None and row.get("split") != split:
            continue
        paths = {}
        for col in VIEW_COLUMNS:
            value = row.get(col)
            paths[col] = None if _is_null(value) else (root / str(value))
        out.append(
            Location(
                id=str(row["id"]),
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                split=str(row.get("split") or "train"),
                region="" if _is_null(row.get("region")) else str(row.get("region")),
                text="" if _is_null(row.get("text")) else str(row.get("text")),
                paths=paths,
                extra={c: row[c] for c in extra_cols},
            )
        )
    return out


def by_split(locations: Iterable[Location]) -> dict[str, list[Location]]:
    """Group locations by split name, keeping their order."""
    groups: dict[str, list[Location]] = {}
    for loc in locations:
        groups.setdefault(loc.split, []).append(loc)
    return groups


def _relative(p: Path, root: Path) -> str:
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.resolve().as_posix()


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
