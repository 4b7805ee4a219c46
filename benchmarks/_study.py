"""What the seed-claim studies (issue #16) share: the demo world, a cached training run on it,
per-query hits averaged over seeds, the paired-bootstrap cell, and a report whose hand-written
``## Reading`` survives a re-run.

Not a script (no ``__main__``): ``anchor_vs_capture.py``, ``gleam_c_study.py`` and
``gleam_x_study.py`` import it. A run is cached under ``<cache>/runs/<key>/`` (the key names the
world and the overrides, so two studies asking for the same run share it): the trainer's own
checkpoint makes an interrupted run resume, and ``ranks.json`` holds what was measured, so a
finished run is read back instead of trained again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from geobridge.atomic import atomic_write_text
from geobridge.configs import resolve_config
from geobridge.demo import evaluate_directions
from geobridge.evaluation.significance import PairedDifference, paired_bootstrap
from geobridge.train import TrainConfig, train
from geobridge.train.frozen_cache import cached_frozen_text_tower
from geobridge.world.dataset import generate_world_dataset

#: The demo's world (``geobridge demo``): 1500 places over 2000 m in 10 regions, 3 held-out
#: districts (300 test places), north-up drone orthophotos, texts without compass bearings.
FINAL_WORLD: dict[str, Any] = dict(
    locations=1500,
    world_size_m=2000.0,
    regions=10,
    test_regions=3,
    drone_view="orthophoto",
    text_compass=False,
)
#: The world of a smoke run: seconds to render and train.
SMOKE_WORLD: dict[str, Any] = dict(
    FINAL_WORLD, locations=60, world_size_m=800.0, regions=4, test_regions=1, size=32
)
SMOKE_OVERRIDES = ["optim.max_steps=2", "data.batch_size=8"]
READING_MARK = "## Reading"


def add_study_arguments(parser: argparse.ArgumentParser, out: Path, epochs_help: str) -> None:
    """The options every study script takes: ``--seeds``, ``--epochs``, ``--cache``, ``--out``
    and ``--smoke`` (a tiny world, 2 steps a run, the report written to a temporary file)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12, help=epochs_help)
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder for worlds and runs (default: temporary)"
    )
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: a tiny world, 2 steps a run, report to a temporary file",
    )


def render_world(folder: Path, world: dict[str, Any], seed: int = 0) -> Path:
    """The manifest of ``world`` rendered into ``folder`` (rendered once, then reused)."""
    manifest = folder / "manifest.parquet"
    if manifest.exists():
        return manifest
    spec: dict[str, Any] = dict(
        size=64,
        views=("drone", "street", "satellite"),
        test_region_policy="shared-style",
        workers=2,
        progress=False,
    )
    spec.update(world)
    return generate_world_dataset(folder, seed=seed, **spec)


def world_key(world: dict[str, Any]) -> str:
    """A short stable name of a world's parameters (the cache folder it renders into)."""
    return "world-" + hashlib.sha1(json.dumps(world, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class RunSpec:
    """One training of ``configs/demo.yaml`` on a world: the overrides and the seed."""

    label: str  # what the study calls it (a variant name)
    world: dict[str, Any]
    overrides: tuple[str, ...]
    seed: int
    config: dict[str, Any] | None = None  # a whole training config instead of configs/demo.yaml

    @property
    def key(self) -> str:
        what: list[Any] = [self.world, list(self.overrides)]
        if self.config is not None:
            what.append(self.config)
        digest = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.label}-{digest}-seed{self.seed}"


def run_and_rank(
    spec: RunSpec,
    cache: Path,
    text_store: dict,
    curve: Callable[[Any], dict[str, float]] | None = None,
    keep: Callable[[Any, Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train ``spec`` (or read it back from ``cache``) and rank the test split in every direction.

    Returns ``{"ranks": {direction: [0-based rank of each test query]}, "metrics": {direction:
    R@1}, "seconds", "steps", "measured", ...}``; ``curve`` (called at each epoch end, its
    metrics kept as ``record["curve"]``) and ``keep`` (called with the trained model and the
    world's manifest; what it returns is added to the record) extend it.
    """
    record_path = cache / "runs" / spec.key / "ranks.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    lock = record_path.with_name("training.lock")  # two studies sharing a cache train a run once
    while not record_path.exists() and not _take(lock):
        time.sleep(10)  # another study is training this run: wait for its record
    try:
        if record_path.exists():
            return json.loads(record_path.read_text(encoding="utf-8"))
        return _train_and_rank(spec, record_path, cache, text_store, curve, keep)
    finally:
        if lock.exists() and lock.read_text(encoding="utf-8") == str(os.getpid()):
            lock.unlink()


def _take(lock: Path) -> bool:
    """Hold ``lock`` (a file holding the holder's pid); a lock whose process is gone is taken over."""
    try:
        with open(lock, "x", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        return True
    except FileExistsError:
        try:
            os.kill(int(lock.read_text(encoding="utf-8") or 0), 0)
            return False
        except (ProcessLookupError, ValueError):
            lock.unlink(missing_ok=True)  # its holder died: try again
            return _take(lock)


def _train_and_rank(
    spec: RunSpec,
    record_path: Path,
    cache: Path,
    text_store: dict,
    curve: Callable[[Any], dict[str, float]] | None,
    keep: Callable[[Any, Path], dict[str, Any]] | None,
) -> dict[str, Any]:
    manifest = render_world(cache / world_key(spec.world), spec.world)
    points: list[dict[str, float]] = []

    def at_epoch_end(model: Any) -> dict[str, float]:
        assert curve is not None
        point = curve(model)
        points.append(point)
        return point

    source = resolve_config("demo")
    if spec.config is not None:
        source = record_path.parent / "config.yaml"
        source.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(source, yaml.safe_dump(spec.config, sort_keys=False))
    config = TrainConfig.load(
        source,
        list(spec.overrides)
        + [
            f"seed={spec.seed}",
            f"data.manifest={manifest}",
            f"output_dir={record_path.parent}",
            "resume=true",
            "progress=false",
            "tensorboard=false",
        ],
    )
    load, tick = os.getloadavg()[0], time.perf_counter()
    run = train(config, text_features=text_store, validate_fn=at_epoch_end if curve else None)
    with torch.no_grad(), cached_frozen_text_tower(run.model, text_store):
        rows = evaluate_directions(run.model, manifest, "test")
    record: dict[str, Any] = {
        "spec": {
            "label": spec.label,
            "world": spec.world,
            "overrides": list(spec.overrides),
            "seed": spec.seed,
        },
        "model_dir": str(record_path.parent / "checkpoints" / "last" / "model"),
        "manifest": str(manifest),
        "ranks": {name: [int(r) for r in ev.per_query["rank"]] for name, ev in rows.items()},
        "metrics": {name: float(ev.metrics["R@1"]) for name, ev in rows.items()},
        "steps": run.step,
        "curve": points,
    }
    if keep is not None:
        record.update(keep(run.model, manifest))
    record["seconds"] = time.perf_counter() - tick
    record["measured"] = machine_line(load)
    atomic_write_text(record_path, json.dumps(record) + "\n")
    print(
        f"{spec.key}: {run.step} steps, "
        + " ".join(f"{k} {v:.1f}" for k, v in record["metrics"].items())
        + f" ({record['seconds']:.0f} s)",
        flush=True,
    )
    return record


def hits(records: Sequence[dict[str, Any]], direction: str, k: int = 1) -> np.ndarray:
    """Each test query's hit at rank ``k`` in ``direction``, averaged over the records (seeds)."""
    per_seed = [np.asarray(r["ranks"][direction]) < k for r in records]
    return np.mean(per_seed, axis=0)


def recall(records: Sequence[dict[str, Any]], direction: str, k: int = 1) -> float:
    """R@k (percent) of ``direction``, the mean over the records (seeds)."""
    return float(100.0 * hits(records, direction, k).mean())


def difference(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], directions: Sequence[str], k: int = 1
) -> PairedDifference:
    """``a`` minus ``b`` in R@k over the queries of ``directions`` pooled (each query's hit
    averaged over the seeds first), with its 95% paired bootstrap interval over queries."""
    return paired_bootstrap(
        np.concatenate([hits(a, d, k) for d in directions]),
        np.concatenate([hits(b, d, k) for d in directions]),
    )


def cell(d: PairedDifference) -> str:
    """``+1.2 (-0.5, +2.9)``, bold when the interval excludes 0."""
    text = f"{d.difference:+.1f} ({d.low:+.1f}, {d.high:+.1f})"
    return f"**{text}**" if d.significant else text


def seeds_up_level_down(
    a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], directions: Sequence[str], k: int = 1
) -> str:
    """How many seeds have ``a`` above / level with / below ``b`` (pooled R@k, same seed paired)."""
    signs = [
        int(np.sign(round(sum(recall([x], d, k) - recall([y], d, k) for d in directions), 6)))
        for x, y in zip(a, b, strict=True)
    ]
    return f"{signs.count(1)} / {signs.count(0)} / {signs.count(-1)}"


def machine_line(load_at_start: float) -> str:
    """Date, machine and load of a measurement (the load matters: the runs share 2 cores)."""
    return (
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load {load_at_start:.1f} at start / "
        f"{os.getloadavg()[0]:.1f} at end"
    )


def write_report(out: Path, generated: str) -> None:
    """Write ``generated`` to ``out`` atomically, keeping the hand-written ``## Reading`` of the
    file already there."""
    kept = ""
    if out.exists():
        text = out.read_text(encoding="utf-8")
        at = text.find("\n" + READING_MARK + "\n")
        kept = "" if at < 0 else text[at:]
    atomic_write_text(out, generated.rstrip() + "\n" + kept)
