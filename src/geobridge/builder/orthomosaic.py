"""Geo-referenced orthomosaics (GeoTIFF / COG in any CRS), read through windows only.

`Orthomosaic` checks the geo-reference once, then answers two questions without ever loading the
whole raster: which ground box does a pixel window cover (stage 1), and what does a north-up
ground square centred on a point look like (stage 2's reverse crop). A 20,000 x 20,000 image costs
only the windows that are read.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geobridge.builder.ground import coarse_then_dense, ground_grid
from geobridge.geo import Footprint, metres_per_degree

#: GDAL's block cache defaults to 5% of RAM (over 1 GB here); reads are bounded to this instead
#: (rasterio passes an integer GDAL_CACHEMAX to GDAL in bytes).
GDAL_CACHE_MB = 128
UNREADABLE_ADVICE = "the file is truncated or corrupt; copy or download it again"


class OrthomosaicError(ValueError):
    """The file cannot serve as a geo-referenced orthomosaic; the message says why."""


class CropError(ValueError):
    """One crop cannot be made (off the edge, mostly nodata); the location is skipped."""


@dataclass(frozen=True)
class Crop:
    """A north-up RGB crop and how much of it had no data."""

    image: np.ndarray  # (size_px, size_px, 3) uint8
    nodata_fraction: float


def _apply(t, x, y):
    """Apply a north-up affine geotransform to (x, y) (floats or arrays)."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f


class Orthomosaic:
    """An open orthomosaic with a validated geo-reference; use as a context manager."""

    def __init__(self, path: str | Path):
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        self.path = Path(path)
        if not self.path.exists():
            raise OrthomosaicError(f"orthomosaic not found: {self.path}")
        try:
            with warnings.catch_warnings():  # a missing geo-reference becomes a clear error below
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.dataset = rasterio.open(self.path)
        except RasterioIOError as err:
            raise OrthomosaicError(f"cannot open orthomosaic {self.path.name}: {err}") from err
        try:
            self._validate()
        except Exception:
            self.dataset.close()
            raise

    def _validate(self) -> None:
        from affine import Affine
        from pyproj import CRS, Transformer

        ds = self.dataset
        if ds.crs is None or ds.transform == Affine.identity():
            raise OrthomosaicError(
                f"{self.path.name} has no geo-reference (no CRS or geotransform); georeference it "
                "(e.g. `gdal_translate -a_srs EPSG:XXXX -a_ullr ...`) and run again"
            )
        if ds.transform.b != 0 or ds.transform.d != 0:
            raise OrthomosaicError(f"{self.path.name} has a rotated geotransform; warp it north-up first")
        if ds.count < 3:
            raise OrthomosaicError(f"{self.path.name} has {ds.count} band(s); an RGB orthomosaic needs 3")
        try:
            self.crs = CRS.from_user_input(ds.crs.to_wkt())
            self._to_lonlat = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
            self._from_lonlat = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
            cx, cy = _apply(ds.transform, ds.width / 2.0, ds.height / 2.0)
            lon, lat = self._to_lonlat.transform(cx, cy, errcheck=True)
        except Exception as err:  # pyproj raises CRSError / ProjError and friends
            raise OrthomosaicError(
                f"{self.path.name}: its CRS cannot be transformed to latitude/longitude ({err}); "
                "reproject it to a standard CRS (e.g. UTM or EPSG:4326)"
            ) from err
        if not (np.isfinite(lon) and np.isfinite(lat) and -90 <= lat <= 90):
            raise OrthomosaicError(f"{self.path.name}: its CRS gives no valid latitude/longitude")
        self.centre_lat, self.centre_lon = float(lat), float(lon)
        self.gsd_x_m, self.gsd_y_m = self._pixel_size_m()

    def _pixel_size_m(self) -> tuple[float, float]:
        t = self.dataset.transform
        if self.crs.is_geographic:
            per_lat, per_lon = metres_per_degree(self.centre_lat)
            return abs(t.a) * per_lon, abs(t.e) * per_lat
        factor = self.crs.axis_info[0].unit_conversion_factor or 1.0
        return abs(t.a) * factor, abs(t.e) * factor

    @property
    def gsd_m(self) -> float:
        """Ground sampling distance in metres per pixel (mean of both axes)."""
        return (self.gsd_x_m + self.gsd_y_m) / 2.0

    @property
    def width(self) -> int:
        return int(self.dataset.width)

    @property
    def height(self) -> int:
        return int(self.dataset.height)

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> Orthomosaic:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- geometry -------------------------------------------------------------------------------

    def pixel_to_latlon(self, row, col) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of pixel coordinates (row, col may be fractional; 0.5 = first pixel centre)."""
        x, y = _apply(
            self.dataset.transform, np.asarray(col, dtype=np.float64), np.asarray(row, dtype=np.float64)
        )
        lon, lat = self._to_lonlat.transform(x, y)
        return np.asarray(lat), np.asarray(lon)

    def latlon_to_pixel(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of (lat, lon)."""
        x, y = self._from_lonlat.transform(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
        col, row = _apply(~self.dataset.transform, np.asarray(x), np.asarray(y))
        return np.asarray(row), np.asarray(col)

    def window_footprint(self, row_off: int, col_off: int, height: int, width: int) -> Footprint:
        """The lat/lon box holding a pixel window (its corners and edge midpoints)."""
        rows = np.array([0, 0, 0, 0.5, 0.5, 1, 1, 1]) * height + row_off
        cols = np.array([0, 0.5, 1, 0, 1, 0, 0.5, 1]) * width + col_off
        lat, lon = self.pixel_to_latlon(rows, cols)
        return Footprint(
            west=float(lon.min()), south=float(lat.min()), east=float(lon.max()), north=float(lat.max())
        )

    def valid_fraction(self, row_off: int, col_off: int, height: int, width: int, samples: int = 64) -> float:
        """Share of valid (not nodata / not masked) pixels in a window, from a decimated mask read."""
        import rasterio
        from rasterio.errors import RasterioError
        from rasterio.windows import Window

        out = (min(samples, height), min(samples, width))
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024):
                window = Window(col_off, row_off, width, height)
                mask = self.dataset.read_masks(1, window=window, out_shape=out)
        except RasterioError as err:
            raise OrthomosaicError(f"cannot read {self.path.name} ({err}): {UNREADABLE_ADVICE}") from None
        return float(np.count_nonzero(mask)) / mask.size

    # --- reverse crop ---------------------------------------------------------------------------

    def crop(
        self, lat: float, lon: float, size_m: float, size_px: int, max_nodata_fraction: float = 0.02
    ) -> Crop:
        """A north-up ``size_m`` ground square centred on (lat, lon), resampled to ``size_px``.

        Reads only the window under the square (decimated when the source is much finer than the
        output, so memory is bounded by the output size, not the source resolution). Raises
        `CropError` when the square leaves the raster or holds too much nodata.
        """
        import cv2
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.errors import RasterioError
        from rasterio.windows import Window

        grid = ground_grid(lat, lon, size_m, size_px)
        rows_cols = coarse_then_dense(lambda la, lo: self.latlon_to_pixel(la, lo)[::-1], grid)
        col_map, row_map = rows_cols
        col0, col1 = float(col_map.min()) - 1.0, float(col_map.max()) + 2.0
        row0, row1 = float(row_map.min()) - 1.0, float(row_map.max()) + 2.0
        if col0 < -1.0 or row0 < -1.0 or col1 > self.width + 1.0 or row1 > self.height + 1.0:
            raise CropError(
                f"the {size_m:g} m crop at ({lat:.6f}, {lon:.6f}) falls off the edge of {self.path.name}"
            )
        c0, r0 = max(0, int(math.floor(col0))), max(0, int(math.floor(row0)))
        c1, r1 = min(self.width, int(math.ceil(col1))), min(self.height, int(math.ceil(row1)))
        win_w, win_h = c1 - c0, r1 - r0
        # read at most ~2x the output resolution: bounded memory for very fine sources
        scale = min(1.0, 2.0 * size_px / max(win_w, win_h))
        out_w, out_h = max(1, int(round(win_w * scale))), max(1, int(round(win_h * scale)))
        window = Window(c0, r0, win_w, win_h)
        resampling = Resampling.average if scale < 1.0 else Resampling.nearest
        try:
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024):
                pixels = self.dataset.read(
                    (1, 2, 3), window=window, out_shape=(3, out_h, out_w), resampling=resampling
                )
                mask = self.dataset.read_masks(
                    1, window=window, out_shape=(out_h, out_w), resampling=Resampling.nearest
                )
        except RasterioError as err:  # a truncated or corrupt file: this crop fails, the build goes on
            raise CropError(
                f"cannot read {self.path.name} under the {size_m:g} m crop at "
                f"({lat:.6f}, {lon:.6f}) ({err}): {UNREADABLE_ADVICE}"
            ) from None
        sx, sy = out_w / win_w, out_h / win_h
        map_x = ((col_map - c0) * sx - 0.5).astype(np.float32)
        map_y = ((row_map - r0) * sy - 0.5).astype(np.float32)
        rgb = np.ascontiguousarray(np.moveaxis(pixels, 0, -1))
        if rgb.dtype != np.uint8:
            rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        image = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        valid = cv2.remap(
            mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        nodata_fraction = 1.0 - float(np.count_nonzero(valid)) / valid.size
        if nodata_fraction > max_nodata_fraction:
            raise CropError(
                f"the {size_m:g} m crop at ({lat:.6f}, {lon:.6f}) is {100 * nodata_fraction:.0f}% nodata "
                f"(limit {100 * max_nodata_fraction:.0f}%)"
            )
        return Crop(image=image, nodata_fraction=nodata_fraction)
