"""Stage 1: seeds from geo-referenced orthomosaics.

A window of ``window_m`` metres slides over each orthomosaic with a stride of ``stride_m``;
windows whose valid (non-nodata) share reaches ``min_valid_fraction`` become seeds: the ground
footprint the window covers, its centre as latitude/longitude, and the ground sampling distance.
Only masks are read, decimated, window by window, so any raster size works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from geobridge.builder.config import SeedSettings
from geobridge.builder.orthomosaic import Orthomosaic
from geobridge.geo import Footprint


@dataclass(frozen=True)
class Seed:
    """A window of an orthomosaic: where it lies on the ground and how finely it is sampled."""

    id: str
    orthomosaic: str
    lat: float
    lon: float
    gsd_m: float
    footprint: Footprint
    valid_fraction: float

    def to_dict(self) -> dict:
        f = self.footprint
        return {
            "id": self.id,
            "orthomosaic": self.orthomosaic,
            "lat": self.lat,
            "lon": self.lon,
            "gsd_m": self.gsd_m,
            "footprint": [f.west, f.south, f.east, f.north],
            "valid_fraction": self.valid_fraction,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Seed:
        w, s, e, n = d["footprint"]
        return cls(
            id=d["id"],
            orthomosaic=d["orthomosaic"],
            lat=float(d["lat"]),
            lon=float(d["lon"]),
            gsd_m=float(d["gsd_m"]),
            footprint=Footprint(west=w, south=s, east=e, north=n),
            valid_fraction=float(d["valid_fraction"]),
        )


@dataclass
class SeedScan:
    """All seeds of one orthomosaic and the windows rejected for too little valid data."""

    seeds: list[Seed] = field(default_factory=list)
    windows: int = 0
    rejected_nodata: int = 0


def _starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering [0, length): regular steps, the last one flush with the end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def iter_windows(ortho: Orthomosaic, settings: SeedSettings) -> Iterator[tuple[int, int, int, int]]:
    """(row_off, col_off, height, width) of every sliding window, in pixels."""
    win_w = max(1, int(round(settings.window_m / ortho.gsd_x_m)))
    win_h = max(1, int(round(settings.window_m / ortho.gsd_y_m)))
    stride_w = max(1, int(round(settings.stride_m / ortho.gsd_x_m)))
    stride_h = max(1, int(round(settings.stride_m / ortho.gsd_y_m)))
    for row in _starts(ortho.height, win_h, stride_h):
        for col in _starts(ortho.width, win_w, stride_w):
            yield row, col, min(win_h, ortho.height - row), min(win_w, ortho.width - col)


def scan_orthomosaic(path: str | Path, settings: SeedSettings) -> SeedScan:
    """Seeds of one orthomosaic. Raises `OrthomosaicError` when it is not usable at all."""
    path = Path(path)
    scan = SeedScan()
    with Orthomosaic(path) as ortho:
        for row, col, h, w in iter_windows(ortho, settings):
            scan.windows += 1
            valid = ortho.valid_fraction(row, col, h, w)
            if valid < settings.min_valid_fraction:
                scan.rejected_nodata += 1
                continue
            lat, lon = ortho.pixel_to_latlon(row + h / 2.0, col + w / 2.0)
            scan.seeds.append(
                Seed(
                    id=f"{path.stem}-r{row}-c{col}",
                    orthomosaic=str(path),
                    lat=float(lat),
                    lon=float(lon),
                    gsd_m=ortho.gsd_m,
                    footprint=ortho.window_footprint(row, col, h, w),
                    valid_fraction=valid,
                )
            )
    return scan
