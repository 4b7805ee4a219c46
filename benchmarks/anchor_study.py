"""Does the semantic anchor help street <-> aerial retrieval on the embedded world? The study
behind issue #3: GeoBridge's ablation (image-only, text-only, fused) under each world and
training change tried, on held-out districts, with paired bootstrap intervals.

    HF_HUB_OFFLINE=1 python benchmarks/anchor_study.py [--setups final base ...] [--out benchmarks/anchor_study.md]

Every setup renders its world into a cache folder (``--cache``, default a temporary one), trains
the variants it names with ``configs/demo.yaml`` plus its overrides (one frozen-text feature
store shared by the variants), and evaluates all nine GeoBridge directions on the test split
(held-out districts) with protocol ``geobridge``. Runs are deterministic (same seed, same
numbers on any machine load). The paper's reference (GeoLoc, R@1): image-only P2D 4.90, P2S
6.43; fused P2D 41.15, P2S 38.87.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import platform
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from _study import FINAL_WORLD, SMOKE_OVERRIDES, SMOKE_WORLD, render_world

from geobridge.atomic import atomic_write_text
from geobridge.configs import resolve_config
from geobridge.demo import STREET_DIRECTIONS, evaluate_directions, hits_at_one
from geobridge.evaluation.significance import paired_bootstrap
from geobridge.records import read_manifest
from geobridge.train import TrainConfig, train
from geobridge.train.frozen_cache import cached_frozen_text_tower

SHOWN = ("D2S", "P2D", "D2P", "P2S", "S2P", "T2S")
OLD_WORLD = dict(
    locations=1000, world_size_m=1600.0, regions=8, test_regions=1, drone_view="oblique", text_compass=True
)
DISTRICTS = dict(OLD_WORLD, regions=10, test_regions=3)
OLD_TRAIN = ["data.north_up_views=[satellite]", "optim.epochs=8"]


@dataclass(frozen=True)
class Setup:
    """One row group of the study: a world, training overrides, the variants trained."""

    name: str
    what: str
    world: dict
    overrides: list[str] = field(default_factory=list)
    variants: tuple[str, ...] = ("image-only", "geobridge")
    pretrain_world: dict | None = None  # text-only pre-training on another world (seed 1) first


SETUPS = [
    Setup(
        "base",
        "session 1's demo world: one held-out district, oblique drone, texts with bearings",
        OLD_WORLD,
        OLD_TRAIN,
    ),
    Setup(
        "spacing-60m",
        "locations >= 60 m apart (GeoLoc's 50% footprint de-duplication)",
        dict(OLD_WORLD, world_size_m=3200.0, min_spacing_m=60.0),
        OLD_TRAIN,
    ),
    Setup("longer", "base, 3x the steps", OLD_WORLD, ["data.north_up_views=[satellite]", "optim.epochs=24"]),
    Setup(
        "districts",
        "three held-out districts of three styles (300 -> 200 test queries over a mixed area)",
        DISTRICTS,
        OLD_TRAIN,
    ),
    Setup(
        "text-weight-2",
        "districts, text group weighted 2",
        DISTRICTS,
        OLD_TRAIN + ["loss.options={group_weights: {text: 2.0}}"],
        ("geobridge",),
    ),
    Setup(
        "districts-longer",
        "districts, 2x the steps",
        DISTRICTS,
        ["data.north_up_views=[satellite]", "optim.epochs=16"],
    ),
    Setup(
        "no-bearings",
        "districts, texts without compass bearings",
        dict(DISTRICTS, text_compass=False),
        OLD_TRAIN,
        ("geobridge", "text-only"),
    ),
    Setup(
        "vl-pretrain",
        "no-bearings, towers first pre-trained text-only on another world (seed 1), standing in for CLIP",
        dict(DISTRICTS, text_compass=False),
        OLD_TRAIN,
        ("image-only", "geobridge", "text-only"),
        pretrain_world=dict(
            locations=900,
            world_size_m=1600.0,
            regions=8,
            test_regions=1,
            drone_view="oblique",
            text_compass=True,
        ),
    ),
    Setup(
        "orthophoto",
        "no-bearings + GeoLoc's drone view (orthomosaic crops), no rotation",
        dict(DISTRICTS, text_compass=False, drone_view="orthophoto"),
        ["data.rotate_p=0", "optim.epochs=8"],
    ),
    Setup(
        "street-64x128",
        "orthophoto world rendered at 128 px, street tower at 64x128",
        dict(DISTRICTS, text_compass=False, drone_view="orthophoto", size=128),
        ["data.rotate_p=0", "optim.epochs=8", "model.overrides.towers.street.image_size=[64,128]"],
    ),
    Setup(
        "final",
        "the demo: 1500 locations, 300 test queries, orthophoto drone turned with the satellite, no bearings",
        FINAL_WORLD,
        [],
        ("image-only", "text-only", "geobridge"),
    ),
    Setup(
        "text-last-block",
        "final, MiniLM's last layer trained too (the paper fine-tunes the last layers)",
        FINAL_WORLD,
        ["model.freeze_views.text=1"],
        ("image-only", "text-only", "geobridge"),
    ),
    Setup(
        "captures-apart",
        "final, each view of a place under its own sun, exposure and season (capture_variation 1)",
        dict(FINAL_WORLD, capture_variation=1.0),
        [],
        ("image-only", "text-only", "geobridge"),
    ),
    Setup("captures-half", "final, capture_variation 0.5", dict(FINAL_WORLD, capture_variation=0.5)),
    Setup(
        "captures-apart-longer",
        "captures-apart, 2x the steps",
        dict(FINAL_WORLD, capture_variation=1.0),
        ["optim.epochs=12"],
    ),
]


def run_setup(setup: Setup, cache: Path) -> dict:
    manifest = render_world(cache / setup.name, setup.world)
    test = read_manifest(manifest, split="test")
    store: dict = {}
    base_model = None
    if setup.pretrain_world is not None:
        pre_manifest = render_world(cache / f"{setup.name}-pretrain", setup.pretrain_world, seed=1)
        config = TrainConfig.load(
            resolve_config("demo"),
            [
                f"data.manifest={pre_manifest}",
                f"output_dir={cache / 'runs' / setup.name / 'pretrain'}",
                "loss.edge_set=text-only",
                "resume=false",
                "progress=false",
                "tensorboard=false",
                "optim.epochs=8",
                "data.north_up_views=[satellite]",
            ],
        )
        base_model = train(config, text_features=store).model
    rows: dict = {}
    for variant in setup.variants:
        config = TrainConfig.load(
            resolve_config("demo"),
            list(setup.overrides)
            + [
                f"data.manifest={manifest}",
                f"output_dir={cache / 'runs' / setup.name / variant}",
                f"loss.edge_set={variant}",
                "resume=false",
                "progress=false",
                "tensorboard=false",
            ],
        )
        tick = time.perf_counter()
        run = train(
            config, model=copy.deepcopy(base_model) if base_model is not None else None, text_features=store
        )
        with torch.no_grad(), cached_frozen_text_tower(run.model, store):
            rows[variant] = evaluate_directions(run.model, manifest, "test")
        print(f"{setup.name} {variant}: {run.step} steps in {time.perf_counter() - tick:.0f} s", flush=True)
    return {"rows": rows, "queries": len(test)}


def table(results: dict[str, dict], kept: dict[str, list[str]]) -> str:
    """The rows of this run's setups, and ``kept`` rows (earlier runs) of the setups not re-run."""
    lines = [
        "| setup | variant | test queries | "
        + " | ".join(SHOWN)
        + " | fused - image-only, street directions (95% interval) | measured |",
        "|" + "---|" * (len(SHOWN) + 5),
    ]
    today = dt.date.today().isoformat()
    for setup in SETUPS:
        if setup.name not in results:
            lines += kept.get(setup.name, [])
            continue
        rows = results[setup.name]["rows"]
        hits = hits_at_one(rows) if "image-only" in rows and "geobridge" in rows else None
        for variant, by in rows.items():
            cells = [f"{by[n].metrics['R@1']:.1f}" if n in by else "-" for n in SHOWN]
            diffs = ""
            if hits and variant == "geobridge":
                parts = []
                for name in STREET_DIRECTIONS:
                    d = paired_bootstrap(hits["geobridge"][name], hits["image-only"][name])
                    parts.append(f"{name} {d.difference:+.1f} ({d.low:+.1f}, {d.high:+.1f})")
                diffs = "; ".join(parts)
            lines.append(
                f"| {setup.name} | {variant} | {results[setup.name]['queries']} | "
                + " | ".join(cells)
                + f" | {diffs} | {today} |"
            )
    return "\n".join(lines)


def kept_rows(out: Path, first_date: str = "2026-11-22") -> dict[str, list[str]]:
    """Table rows of an earlier report by setup name (rows written before the ``measured``
    column existed get ``first_date``), so re-running some setups keeps the others."""
    if not out.exists():
        return {}
    names = {s.name for s in SETUPS}
    kept: dict[str, list[str]] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] not in names:
            continue
        if len(cells) == len(SHOWN) + 4:
            line = line.rstrip() + f" {first_date} |"
        kept.setdefault(cells[0], []).append(line)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setups",
        nargs="*",
        default=[s.name for s in SETUPS],
        help="names among: " + ", ".join(s.name for s in SETUPS),
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder for worlds and runs (default: a temporary folder)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: the `final` setup on a tiny world, 2 steps a variant, "
        "report printed from a temporary file",
    )
    args = parser.parse_args()
    setups = SETUPS
    if args.smoke:
        setups = [
            replace(
                s,
                world=SMOKE_WORLD,
                overrides=SMOKE_OVERRIDES,
                variants=("image-only", "geobridge"),
            )
            for s in SETUPS
            if s.name == "final"
        ]
        args.setups, args.cache, args.out = ["final"], None, None
    unknown = sorted(set(args.setups) - {s.name for s in SETUPS})
    if unknown:
        parser.error(f"unknown setups {unknown}")
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or Path(scratch)
        out = args.out or Path(scratch) / "anchor_study.md"
        started = time.perf_counter()
        results: dict[str, dict] = {}
        kept = kept_rows(out)
        for setup in setups:
            if setup.name in args.setups:
                results[setup.name] = run_setup(setup, cache)
                write_report(
                    out, results, kept, (time.perf_counter() - started) / 60
                )  # after each setup: a long run keeps what it measured
        print(out.read_text(encoding="utf-8"))


def write_report(out: Path, results: dict[str, dict], kept: dict[str, list[str]], minutes: float) -> None:
    body = (
        f"""# The semantic anchor on the embedded world (issue #3)

Machine: {platform.node()}, {platform.processor() or platform.machine()}, 2 cores. Latest run {dt.date.today()}: {", ".join(results)} in {minutes:.0f} min
(worlds and frozen text features cached between setups); rows of other setups are kept from the runs dated in their last column.
R@1 (%) on the held-out test districts, protocol `geobridge`. Reference (the paper, GeoLoc):
image-only P2D 4.90 / P2S 6.43, fused P2D 41.15 / P2S 38.87. The last column is fused minus
image-only on the same queries with a 95% paired bootstrap interval (an interval holding 0: noise).

{table(results, kept)}

Setups:

"""
        + "\n".join(f"- `{s.name}`: {s.what}." for s in SETUPS if s.name in results or s.name in kept)
        + "\n"
    )
    atomic_write_text(out, body + hand_written_reading(out))


READING_MARK = "## Reading"


def hand_written_reading(out: Path) -> str:
    """The hand-written interpretation below ``## Reading`` survives a re-run of the tables."""
    if not out.exists():
        return ""
    text = out.read_text(encoding="utf-8")
    at = text.find(READING_MARK)
    return "" if at < 0 else "\n" + text[at:]


if __name__ == "__main__":
    main()
