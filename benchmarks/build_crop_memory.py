"""Peak memory of reverse cropping from a 20,000 x 20,000 GeoTIFF.

A 20,000 x 20,000 RGB GeoTIFF (0.1 m/px, UTM, tiled 512, deflate, internal mask) is written with
windowed writes in a temporary folder (never whole in memory) and deleted afterwards. A fresh
process then opens it with `geobridge.builder.orthomosaic.Orthomosaic` and makes reverse crops at
80-180 m (resampled to 512 px, as stage 2 does); its peak resident memory (ru_maxrss) is the
measured figure. Reference, same run: the same crops from a 2,000 x 2,000 GeoTIFF made the same
way, so the ratio shows whether memory grows with the raster (it should not), and the size the
raster would take if read whole (a non-windowed implementation).

    python benchmarks/build_crop_memory.py [--size 20000] [--crops 60] [--out benchmarks/build_crop_memory.md]

Target (issue 6): peak memory under 1 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GSD_M = 0.1
ORIGIN = (465_000.0, 5_250_000.0)  # UTM 32N, near the embedded world's default origin
EPSG = 32632
REFERENCE_SIZE = 3_000  # 300 m: the largest (180 m) crops still fit


def write_big_geotiff(path: Path, size: int, block: int = 512) -> float:
    """Write a textured size x size RGB GeoTIFF block by block; returns seconds taken."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, size=(3, block, block), dtype=np.uint8)
    t = time.perf_counter()
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs=f"EPSG:{EPSG}",
        transform=Affine(GSD_M, 0.0, ORIGIN[0], 0.0, -GSD_M, ORIGIN[1]),
        tiled=True,
        blockxsize=block,
        blockysize=block,
        compress="deflate",
        zlevel=1,
        BIGTIFF="YES",
    )
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True, GDAL_CACHEMAX=64 * 1024 * 1024):
        with rasterio.open(path, "w", **profile) as dst:
            for r in range(0, size, block):
                for c in range(0, size, block):
                    h, w = min(block, size - r), min(block, size - c)
                    shifted = np.roll(texture, (r // block * 37 + c // block * 11), axis=2)[:, :h, :w]
                    dst.write(shifted, window=Window(c, r, w, h))
                    dst.write_mask(np.full((h, w), 255, np.uint8), window=Window(c, r, w, h))
    return time.perf_counter() - t


CHILD = r"""
import json, resource, sys, time
import numpy as np
from pyproj import Transformer
from geobridge.builder.orthomosaic import Orthomosaic
path, crops = sys.argv[1], int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(1)
t = time.perf_counter()
made = 0
with Orthomosaic(path) as ortho:
    for i in range(crops):
        scale = float(rng.choice([80, 100, 120, 150, 180]))
        margin = 0.6 * scale / ortho.gsd_m + 2
        row, col = rng.uniform(margin, ortho.height - margin), rng.uniform(margin, ortho.width - margin)
        lat, lon = ortho.pixel_to_latlon(row, col)
        crop = ortho.crop(float(lat), float(lon), scale, 512)
        assert crop.image.shape == (512, 512, 3)
        made += 1
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kb": peak, "before_kb": before, "crops": made, "seconds": seconds}))
"""


def measure(path: Path, crops: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(crops)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cropping process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from geobridge.builder.orthomosaic import GDAL_CACHE_MB

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--crops", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: tiny sizes, prints the table, writes no file"
    )
    args = parser.parse_args()
    reference_size = REFERENCE_SIZE
    if args.smoke:  # rasters just large enough for a 180 m crop at 0.1 m/px
        args.size, args.crops, reference_size, args.out = 2_000, 2, 1_900, None
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        small, big = Path(tmp) / "small.tif", Path(tmp) / "big.tif"
        write_big_geotiff(small, reference_size)
        write_seconds = write_big_geotiff(big, args.size)
        big_mb = big.stat().st_size / 1e6
        reference = measure(small, args.crops)
        result = measure(big, args.crops)
    # temporary folder (and the big GeoTIFF) deleted here
    whole_gb = args.size * args.size * 3 / 1e9
    load = os.getloadavg()
    peak_gb = result["peak_kb"] / 1e6
    lines = [
        "# Reverse cropping from a 20,000 x 20,000 GeoTIFF: peak memory",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"- date: {dt.datetime.now().isoformat(timespec='minutes')}",
        f"- load average while running: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        + (" (machine shared with other engineers' jobs)" if load[0] > 1.5 else ""),
        f"- raster: {args.size:,} x {args.size:,} RGB uint8, {GSD_M} m/px, EPSG:{EPSG}, tiled 512, deflate, internal mask; "
        f"{big_mb:.0f} MB on disk, written with windowed writes in {write_seconds:.0f} s, deleted after the run",
        f"- {args.crops} crops at random positions, scales 80-180 m (800-1,800 source pixels), resampled to 512 x 512",
        "- peak = ru_maxrss of a fresh process that opens the raster and crops (Python, NumPy, GDAL included)",
        f"- reference: the same crops from a {REFERENCE_SIZE:,} x {REFERENCE_SIZE:,} GeoTIFF written the same way",
        "",
        "| raster | peak memory (MB) | crops/s | peak vs reference | target < 1 GB |",
        "|---|---|---|---|---|",
        f"| {REFERENCE_SIZE:,} x {REFERENCE_SIZE:,} (reference) | {reference['peak_kb'] / 1e3:.0f} | {reference['crops'] / reference['seconds']:.1f} | 1.00x | - |",
        f"| {args.size:,} x {args.size:,} | {result['peak_kb'] / 1e3:.0f} | {result['crops'] / result['seconds']:.1f} | "
        f"{result['peak_kb'] / reference['peak_kb']:.2f}x | {'ok' if peak_gb < 1.0 else 'over'} |",
        "",
        f"Reading the {args.size:,} x {args.size:,} raster whole would need {whole_gb:.1f} GB for its pixels alone.",
        f"`Orthomosaic` caps GDAL's block cache at {GDAL_CACHE_MB} MB (GDAL's default is 5% of RAM): the growth over the",
        "reference is that cache filling up with the larger raster's blocks; it stops there.",
    ]
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
