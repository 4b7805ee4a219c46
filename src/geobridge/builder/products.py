"""The embedded world's geo-referenced products: what a real dataset build starts from.

`render_products(out, seed)` renders, from one procedural world:

- ``orthomosaic.tif``: a drone flight's orthomosaic, RGB in the flight area's UTM zone at
  ``gsd_m`` metres per pixel, an internal nodata mask outside the flight's (rotated) footprint,
  tiled 256 x 256 with overviews (a COG-style tiled GeoTIFF), written block by block;
- ``tiles/{z}/{x}/{y}.png``: Web Mercator satellite tiles over the world (another sun position
  than the drone flight, like imagery from another day);
- ``panoramas/<id>.png`` + ``panoramas.csv`` (id, lat, lon, heading, path): street panoramas
  at road points, first column facing ``heading``;
- ``world.json``: how to regenerate the world (the ground truth), and what was rendered.

Every pixel is placed by exact coordinate maths (UTM or Web Mercator -> lat/lon -> world cell),
so a product's geo-reference is the world's truth to a fraction of a pixel.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geobridge.atomic import atomic_directory, atomic_write_text
from geobridge.geo import Footprint, utm_epsg

WORLD_FILE = "world.json"


@dataclass(frozen=True)
class ProductSettings:
    """What to render; the defaults make a small, quick set of products."""

    seed: int = 0
    world_size_m: float = 800.0
    regions: int = 2
    gsd_m: float = 0.4
    flight_margin_m: float = 60.0  # the orthomosaic's frame stays this far inside the world
    flight_rotation_deg: float = 12.0  # the flight's valid area is a rotated rectangle
    tile_zoom: int = 18
    panoramas: int = 24
    panorama_height_px: int = 128
    orthomosaic_sun: tuple[float, float] = (215.0, 60.0)  # azimuth, elevation of the drone flight


@dataclass
class Products:
    """Paths of the rendered products."""

    root: Path
    orthomosaic: Path
    tiles: Path
    catalogue: Path
    world_file: Path
    tile_zoom: int
    tile_count: int = 0
    panorama_count: int = 0


def world_from_file(world_file: str | Path):
    """Regenerate the world a products folder was rendered from (deterministic per seed).

    Worlds are cached per process by their parameters (treat the result as read-only)."""
    info = json.loads(Path(world_file).read_text())
    w = info["world"]
    return _procedural_world(int(w["seed"]), float(w["size_m"]), float(w["cell_size_m"]), int(w["regions"]))


@functools.lru_cache(maxsize=2)
def _procedural_world(seed: int, size_m: float, cell_size_m: float, regions: int):
    from geobridge.world.sources_procedural import generate_procedural_world

    return generate_procedural_world(seed, size_m=size_m, cell_size_m=cell_size_m, regions=regions)


def world_bounds(world) -> Footprint:
    b = world.bounds
    return Footprint(west=b["west"], south=b["south"], east=b["east"], north=b["north"])


def orthomosaic_settings(settings: ProductSettings):
    from geobridge.world.render import RenderSettings

    return RenderSettings(
        sun_azimuth_deg=settings.orthomosaic_sun[0], sun_elevation_deg=settings.orthomosaic_sun[1]
    )


def _render_to_grid(world, grid_rows: np.ndarray, grid_cols: np.ndarray, render_settings) -> np.ndarray:
    """Render the world's satellite view under arbitrary per-pixel cell coordinates."""
    import cv2

    from geobridge.world.render import render_satellite

    cs = world.georef.cell_size_m
    r_c = float((grid_rows.min() + grid_rows.max()) / 2.0)
    c_c = float((grid_cols.min() + grid_cols.max()) / 2.0)
    span_cells = max(grid_rows.max() - grid_rows.min(), grid_cols.max() - grid_cols.min()) + 4.0
    out_px = grid_rows.shape[0]
    step_cells = span_cells / out_px  # keep roughly the output's resolution
    n = int(math.ceil(span_cells / step_cells))
    ground_m = n * step_cells * cs
    lat_c, lon_c = world.georef.cell_to_latlon(r_c, c_c)
    source = render_satellite(world, lat_c, lon_c, size_px=n, ground_m=ground_m, settings=render_settings)
    # render pixel i has its centre at row r_c + ((i + 0.5) / n - 0.5) * ground_m / cs
    map_y = ((grid_rows - r_c) * cs / ground_m + 0.5) * n - 0.5
    map_x = ((grid_cols - c_c) * cs / ground_m + 0.5) * n - 0.5
    return cv2.remap(
        source,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def write_orthomosaic(world, path: Path, settings: ProductSettings, block: int = 256) -> dict:
    """Render the drone flight's orthomosaic GeoTIFF block by block (windowed writes)."""
    import rasterio
    from affine import Affine
    from pyproj import Transformer
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    bounds = world_bounds(world)
    lat_c, lon_c = bounds.centre
    epsg = utm_epsg(lat_c, lon_c)
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    to_ll = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
    xs, ys = to_utm.transform(
        [bounds.west, bounds.east, bounds.west, bounds.east],
        [bounds.south, bounds.south, bounds.north, bounds.north],
    )
    m = settings.flight_margin_m
    x0, x1 = max(xs[0], xs[2]) + m, min(xs[1], xs[3]) - m
    y0, y1 = max(ys[0], ys[1]) + m, min(ys[2], ys[3]) - m
    g = settings.gsd_m
    width, height = int((x1 - x0) // g), int((y1 - y0) // g)
    transform = Affine(g, 0.0, x0, 0.0, -g, y1)
    # valid area: a rotated rectangle inset in the frame, like a flight's footprint
    cx, cy = width / 2.0, height / 2.0
    half_w, half_h = 0.44 * width, 0.40 * height
    theta = math.radians(settings.flight_rotation_deg)
    render_settings = orthomosaic_settings(settings)
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs=f"EPSG:{epsg}",
        transform=transform,
        tiled=True,
        blockxsize=block,
        blockysize=block,
        compress="deflate",
        photometric="RGB",
        interleave="pixel",
    )
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as dst:
            for r0 in range(0, height, block):
                for c0 in range(0, width, block):
                    h, w = min(block, height - r0), min(block, width - c0)
                    rows = np.arange(h) + r0 + 0.5
                    cols = np.arange(w) + c0 + 0.5
                    pr, pc = np.meshgrid(rows, cols, indexing="ij")
                    # valid mask of the rotated flight rectangle
                    dx, dy = pc - cx, pr - cy
                    u = dx * math.cos(theta) + dy * math.sin(theta)
                    v = -dx * math.sin(theta) + dy * math.cos(theta)
                    valid = (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
                    if not valid.any():
                        dst.write(np.zeros((3, h, w), np.uint8), window=Window(c0, r0, w, h))
                        dst.write_mask(np.zeros((h, w), np.uint8), window=Window(c0, r0, w, h))
                        continue
                    ex, ny = transform.a * pc + transform.c, transform.e * pr + transform.f
                    lon, lat = to_ll.transform(ex, ny)
                    grid_rows, grid_cols = world.georef.latlon_to_cell(lat, lon)
                    rgb = _render_to_grid(
                        world, np.asarray(grid_rows), np.asarray(grid_cols), render_settings
                    )
                    rgb[~valid] = 0
                    dst.write(np.moveaxis(rgb, -1, 0), window=Window(c0, r0, w, h))
                    dst.write_mask((valid * 255).astype(np.uint8), window=Window(c0, r0, w, h))
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2, 4, 8], Resampling.average)
    return {
        "epsg": epsg,
        "gsd_m": g,
        "width": width,
        "height": height,
        "flight": {
            "centre_px": [cx, cy],
            "half_px": [half_w, half_h],
            "rotation_deg": settings.flight_rotation_deg,
        },
    }


def write_tiles(world, root: Path, zoom: int) -> int:
    """Render the Web Mercator tiles over the world at ``zoom``; returns how many were written."""
    import cv2

    from geobridge.builder.providers.xyz import tile_fractions
    from geobridge.world.render import RenderSettings

    bounds = world_bounds(world)
    x_w, y_n = tile_fractions(np.array(bounds.north), np.array(bounds.west), zoom)
    x_e, y_s = tile_fractions(np.array(bounds.south), np.array(bounds.east), zoom)
    count = 0
    settings = RenderSettings()  # the satellite's own day: default sun, summer
    for tx in range(int(math.floor(x_w)), int(math.floor(x_e)) + 1):
        for ty in range(int(math.floor(y_n)), int(math.floor(y_s)) + 1):
            frac = (np.arange(256) + 0.5) / 256.0
            fx, fy = np.meshgrid(tx + frac, ty + frac, indexing="xy")
            n = 2.0**zoom
            lon = fx / n * 360.0 - 180.0
            lat = np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * fy / n))))
            grid_rows, grid_cols = world.georef.latlon_to_cell(lat, lon)
            rgb = _render_to_grid(world, np.asarray(grid_rows), np.asarray(grid_cols), settings)
            ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            target = root / str(zoom) / str(tx) / f"{ty}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.tobytes())
            count += 1
    return count


def write_panoramas(world, root: Path, settings: ProductSettings) -> int:
    """Render street panoramas at spread road points and their catalogue CSV."""
    from PIL import Image

    from geobridge.world.model import LandCover
    from geobridge.world.render import render_street

    rng = np.random.default_rng(settings.seed + 1)
    margin = int(40 / world.georef.cell_size_m)
    road = world.landcover == LandCover.ROAD
    road[:margin, :] = road[-margin:, :] = False
    road[:, :margin] = road[:, -margin:] = False
    cells = np.argwhere(road)
    if len(cells) == 0:
        raise ValueError("the world has no road cells for panoramas")
    chosen: list[np.ndarray] = []
    min_spacing = 25.0 / world.georef.cell_size_m
    for idx in rng.permutation(len(cells)):
        cell = cells[idx]
        if all(np.hypot(*(cell - c)) >= min_spacing for c in chosen):
            chosen.append(cell)
        if len(chosen) == settings.panoramas:
            break
    images = root / "panoramas"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (r, c) in enumerate(chosen):
        lat, lon = world.georef.cell_to_latlon(r + 0.5, c + 0.5)
        heading = float(rng.uniform(0, 360))
        pano = render_street(
            world, lat, lon, height_px=settings.panorama_height_px, rng=rng, heading_deg=heading
        )
        name = f"pano{i:04d}"
        Image.fromarray(pano).save(images / f"{name}.png")
        rows.append(
            {
                "id": name,
                "lat": f"{lat:.8f}",
                "lon": f"{lon:.8f}",
                "heading": f"{heading:.2f}",
                "path": f"panoramas/{name}.png",
            }
        )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "lat", "lon", "heading", "path"])
    writer.writeheader()
    writer.writerows(rows)
    (root / "panoramas.csv").write_text(buffer.getvalue())
    return len(rows)


def render_products(
    out: str | Path, settings: ProductSettings | None = None, progress: bool = True
) -> Products:
    """Render every product into ``out`` (atomically: a failure leaves no half folder)."""
    from tqdm.auto import tqdm

    settings = settings or ProductSettings()
    out = Path(out)
    world = _procedural_world(settings.seed, float(settings.world_size_m), 1.0, settings.regions)
    steps = tqdm(total=3, desc="products", disable=not progress)
    with atomic_directory(out) as tmp:
        ortho = write_orthomosaic(world, tmp / "orthomosaic.tif", settings)
        steps.update()
        tiles = write_tiles(world, tmp / "tiles", settings.tile_zoom)
        steps.update()
        panos = write_panoramas(world, tmp, settings)
        steps.update()
        info = {
            "world": {
                "source": "procedural",
                "seed": settings.seed,
                "size_m": settings.world_size_m,
                "cell_size_m": world.georef.cell_size_m,
                "regions": settings.regions,
                "name": world.name,
                "bounds": world.bounds,
            },
            "orthomosaic": {"path": "orthomosaic.tif", **ortho},
            "tiles": {
                "path": "tiles",
                "zoom": settings.tile_zoom,
                "count": tiles,
                "template": "{z}/{x}/{y}.png",
            },
            "panoramas": {"catalogue": "panoramas.csv", "count": panos},
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
        }
        atomic_write_text(tmp / WORLD_FILE, json.dumps(info, indent=2))
    steps.close()
    return Products(
        root=out,
        orthomosaic=out / "orthomosaic.tif",
        tiles=out / "tiles",
        catalogue=out / "panoramas.csv",
        world_file=out / WORLD_FILE,
        tile_zoom=settings.tile_zoom,
        tile_count=tiles,
        panorama_count=panos,
    )
