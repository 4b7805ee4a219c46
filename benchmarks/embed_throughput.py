"""Embedding throughput: the embedding engine end to end against the model's forward alone.

5,000 PNG tiles at the embedded world's size (64 x 64, smooth random land-cover-like patterns
written to a temp dir) are embedded as satellite views by the demo recipe's model (its satellite
tower, random weights: throughput does not depend on them), three ways in one run:

* **floor**: the model's forward on pre-decoded, pre-transformed tensors (batches of 32);
* **engine**: ``geobridge.models.embedder.encode_images`` end to end (DataLoader workers decoding
  and transforming while the model runs, batches of 32, default worker count);
* **old loop**: what the four copies did before the engine: decode and transform one image after
  another on the main thread, then the forward, batch after batch.

It also times decode + transform alone on one thread (the work the engine overlaps with the
forward). Each way runs ``--repeats`` rounds, interleaved, and keeps its best (the cores are
shared). Target: the engine within 1.3x of the floor.

    python benchmarks/embed_throughput.py [--tiles 5000] [--repeats 2] [--out benchmarks/embed_throughput.md]
    python benchmarks/embed_throughput.py --smoke     # seconds: 200 tiles, 1 round, no file
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from geobridge.configs import resolve_config
from geobridge.images import open_image
from geobridge.models import create_model
from geobridge.models.embedder import EmbedOptions, encode_images
from geobridge.train.config import TrainConfig
from geobridge.views import View

TILE = 64  # the demo world's rendered size
BATCH = 32


def write_tiles(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` PNG tiles: a coarse random colour field upsampled (areas of one colour, like land cover)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        tile = Image.fromarray(coarse).resize((TILE, TILE), Image.Resampling.BILINEAR)
        path = folder / f"tile{i:05d}.png"
        tile.save(path)
        paths.append(path)
    return paths


def demo_model() -> Any:
    config = TrainConfig.load(resolve_config("demo"), [])
    model = create_model(config.model.preset, pretrained=False, views=["satellite"], **config.model.overrides)
    return model.eval()


def floor(model: Any, pixels: torch.Tensor) -> None:
    with torch.no_grad():
        for start in range(0, len(pixels), BATCH):
            model.encode(View.SATELLITE, pixels[start : start + BATCH])


def engine(model: Any, paths: list[Path]) -> None:
    encode_images(model, paths, View.SATELLITE, EmbedOptions(batch_size=BATCH, progress=False))


def old_loop(model: Any, paths: list[Path]) -> None:
    transform = model.image_transform(View.SATELLITE)
    with torch.no_grad():
        for start in range(0, len(paths), BATCH):
            batch = torch.stack([transform(open_image(p)) for p in paths[start : start + BATCH]])
            model.encode(View.SATELLITE, batch)


def decode_only(model: Any, paths: list[Path]) -> None:
    transform = model.image_transform(View.SATELLITE)
    for path in paths:
        transform(open_image(path))


def best_of(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            tick = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - tick)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("embed_throughput.md"))
    parser.add_argument("--smoke", action="store_true", help="200 tiles, one round, print only")
    args = parser.parse_args()
    n, repeats = (200, 1) if args.smoke else (args.tiles, args.repeats)
    model = demo_model()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_tiles(Path(tmp), n)
        transform = model.image_transform(View.SATELLITE)
        pixels = torch.stack([transform(open_image(p)) for p in paths])
        floor(model, pixels[: 4 * BATCH])  # warm-up: first-call allocations and thread start-up
        seconds = best_of(
            {
                "floor": lambda: floor(model, pixels),
                "engine": lambda: engine(model, paths),
                "old loop": lambda: old_loop(model, paths),
                "decode + transform, one thread": lambda: decode_only(model, paths),
            },
            repeats,
        )
    workers = EmbedOptions(batch_size=BATCH).workers_for(n, torch.device("cpu"))
    lines = [
        "| way | seconds | tiles/s | x floor |",
        "|---|---:|---:|---:|",
    ]
    for name, s in seconds.items():
        lines.append(f"| {name} | {s:.2f} | {n / s:,.0f} | {s / seconds['floor']:.2f} |")
    table = "\n".join(lines)
    header = (
        f"{n} tiles of {TILE} px, demo satellite tower at {model.config.image_size(View.SATELLITE)[0]} px, "
        f"batch {BATCH}, engine workers {workers}, torch threads {torch.get_num_threads()}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{dt.date.today().isoformat()}, best of {repeats}"
    )
    print(header)
    print(table)
    if not args.smoke:
        print(f"(table for {args.out}: paste with the analysis)")


if __name__ == "__main__":
    main()
