"""Benchmark: rendering a world dataset (issue 2's performance goal).

Measures, on the procedural world (1.6 km x 1.6 km, seed 0):
- the time to generate the world and to sample + describe N locations;
- per view, the time to render N locations in one process (no file output);
- the end-to-end time of ``generate_world_dataset`` (all views, PNG files, manifest) with the
  given number of worker processes;
- the reference: a naive "render" (nearest-neighbour crop of the colour raster to the same size),
  measured in the same run, so each view's cost is also given as a ratio to it;
- peak memory (max RSS of a fresh process) for generating a 4 km x 4 km world and rendering a few
  locations of it.

Run: ``python benchmarks/world_render.py [--locations 1000] [--size 128] [--workers 2]``; writes
``benchmarks/world_render.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

MEMORY_PROBE = """
import resource, sys, time
import numpy as np
from geobridge.world.sources_procedural import generate_procedural_world
from geobridge.world.sampling import sample_locations
from geobridge.world.render import render_drone, render_map, render_satellite, render_street
t = time.perf_counter()
world = generate_procedural_world(0, size_m={size_m})
gen = time.perf_counter() - t
raster_mb = sum(a.nbytes for a in (world.landcover, world.height, world.colour, world.building_id, world.road_class, world.region)) / 2**20
locs = sample_locations(world, 20, np.random.default_rng(0))
for s in locs:
    render_satellite(world, s.lat, s.lon, size_px=128)
    render_drone(world, s.lat, s.lon, size_px=128, rng=np.random.default_rng(s.index))
    render_street(world, s.lat, s.lon, height_px=64, rng=np.random.default_rng(s.index))
    render_map(world, s.lat, s.lon, size_px=128)
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{gen:.2f}} {{raster_mb:.1f}} {{peak_mb:.1f}}")
"""


def naive_crop(world, lat: float, lon: float, size_px: int, ground_m: float) -> np.ndarray:
    """The reference: nearest-neighbour crop of the colour raster (no shading, no geometry)."""
    row, col = world.georef.latlon_to_cell(lat, lon)
    half = ground_m / 2 / world.georef.cell_size_m
    idx = np.linspace(-half, half, size_px)
    rr = np.clip((row + idx).astype(int), 0, world.shape[0] - 1)
    cc = np.clip((col + idx).astype(int), 0, world.shape[1] - 1)
    return world.colour[rr[:, None], cc[None, :]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big-world-m", type=float, default=4000.0)
    parser.add_argument("--out", type=Path, default=HERE / "world_render.md")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: tiny sizes, prints the table, writes no file"
    )
    args = parser.parse_args()
    if args.smoke:
        args.locations, args.size, args.workers, args.big_world_m, args.out = 6, 32, 1, 600.0, None

    from geobridge.world.dataset import generate_world_dataset
    from geobridge.world.describe import describe_location
    from geobridge.world.render import render_drone, render_map, render_satellite, render_street
    from geobridge.world.sampling import sample_locations
    from geobridge.world.sources_procedural import generate_procedural_world

    load_before = os.getloadavg()
    n, size = args.locations, args.size
    t = time.perf_counter()
    world = generate_procedural_world(0, size_m=1600)
    t_world = time.perf_counter() - t

    t = time.perf_counter()
    locs = sample_locations(world, n, np.random.default_rng([0, 1]), margin_m=90.0)
    texts = [describe_location(world, s.lat, s.lon, np.random.default_rng([0, 2, s.index])) for s in locs]
    t_describe = time.perf_counter() - t
    assert len(texts) == n

    renderers = {
        "satellite": lambda s: render_satellite(world, s.lat, s.lon, size_px=size),
        "drone": lambda s: render_drone(
            world, s.lat, s.lon, size_px=size, rng=np.random.default_rng(s.index)
        ),
        "street": lambda s: render_street(
            world, s.lat, s.lon, height_px=size // 2, rng=np.random.default_rng(s.index)
        ),
        "map": lambda s: render_map(world, s.lat, s.lon, size_px=size),
        "reference: naive crop": lambda s: naive_crop(world, s.lat, s.lon, size, 120.0),
    }
    per_view: dict[str, float] = {}
    for name, fn in renderers.items():
        t = time.perf_counter()
        for s in locs:
            fn(s)
        per_view[name] = time.perf_counter() - t
        print(f"{name}: {per_view[name]:.2f} s for {n}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate_world_dataset(
            Path(tmp) / "bench",
            locations=n,
            seed=0,
            size=size,
            workers=args.workers,
            progress=False,
            world=world,
        )
        t_end_to_end = time.perf_counter() - t
    print(f"end to end with {args.workers} workers: {t_end_to_end:.2f} s", flush=True)

    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE.format(size_m=args.big_world_m)],
        capture_output=True,
        text=True,
        check=True,
    )
    big_gen, big_raster_mb, big_peak_mb = (float(v) for v in probe.stdout.split())
    load_after = os.getloadavg()

    ref = per_view["reference: naive crop"]
    render_total = sum(v for k, v in per_view.items() if not k.startswith("reference"))
    lines = [
        "# World rendering benchmark",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}",
        f"- Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}"
        + (
            " — the machine was shared with other jobs, so times are pessimistic"
            if max(load_before[0], load_after[0]) > 2.5
            else ""
        ),
        f"- Workload: {n} locations x 4 views at {size} px (street panoramas {size // 2} x {size}) on the 1.6 km procedural world, seed 0",
        f"- Command: `python benchmarks/world_render.py --locations {n} --size {size} --workers {args.workers}`",
        "",
        "| step | time (s) | per location (ms) | ratio to reference |",
        "|---|---:|---:|---:|",
        f"| generate world (1.6 km x 1.6 km) | {t_world:.2f} | | |",
        f"| sample + describe {n} locations | {t_describe:.2f} | {1000 * t_describe / n:.1f} | |",
    ]
    for name, sec in per_view.items():
        lines.append(f"| render {name} (1 process) | {sec:.2f} | {1000 * sec / n:.2f} | {sec / ref:.1f}x |")
    lines += [
        f"| render all 4 views (1 process, sum) | {render_total:.2f} | {1000 * render_total / n:.1f} | {render_total / ref:.1f}x |",
        f"| **end to end** `generate_world_dataset` ({args.workers} workers: render + PNG + text + manifest) | **{t_end_to_end:.2f}** | {1000 * t_end_to_end / n:.1f} | |",
        "",
        f"Goal: {n} locations x 4 views under 60 s on 2 cores -> measured {t_end_to_end:.1f} s end to end "
        f"({'met' if t_end_to_end < 60 else 'NOT met'}).",
        "",
        "| memory probe (fresh process) | value |",
        "|---|---:|",
        f"| world size | {args.big_world_m / 1000:.0f} km x {args.big_world_m / 1000:.0f} km at 1 m cells |",
        f"| generate time (s) | {big_gen:.2f} |",
        f"| world rasters (MB) | {big_raster_mb:.0f} |",
        f"| peak RSS incl. rendering 20 locations (MB) | {big_peak_mb:.0f} |",
        "",
        f"Goal: under 2048 MB -> {'met' if big_peak_mb < 2048 else 'NOT met'}.",
        "",
    ]
    if args.out is not None:
        args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
