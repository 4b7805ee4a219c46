"""GLEAM-C's claims on the embedded world: every modality aligned to a satellite hub, against
GeoBridge's six edges and against one pair per model; hub routes against direct edges for
drone <-> street; two training phases against one.

    HF_HUB_OFFLINE=1 python benchmarks/gleam_c_study.py --cache DIR

The world is the demo's (1500 places, 300 test places in 3 held-out districts, views captured
together). Each variant trains ``configs/demo.yaml`` for the same number of steps (12 epochs: the budget read from
``anchor_vs_capture.md``'s learning curve of the image-only baseline on this world) on
seeds 0, 1, 2 and ranks the test split with protocol ``geobridge``:

- ``satellite-centric``: GLEAM-C's edges, drone-satellite and street-satellite (one group);
- ``satellite-centric, two phases``: the same edges, 6 epochs on street and satellite alone
  (GLEAM-C's phase 1 on one source), then 6 epochs on every view (phase 2);
- ``image-only``: GeoBridge's three image edges (drone-satellite, satellite-street, street-drone);
- ``geobridge``: the six edges (the image edges and text to each view);
- ``pairs drone-satellite`` / ``pairs street-satellite``: Sample4Geo's one edge per model, each
  model scored on its own pair.

Drone <-> street is scored twice: directly (the query's embedding against the other view's),
and through the satellite hub (the query's top-1 satellite tile of the test gallery stands in for
the query). Differences are paired bootstrap intervals over the test queries, each query's hit
averaged over the seeds first. Runs are cached in ``--cache`` (``_study.py``), shared with
``anchor_vs_capture.py`` when both use the same folder (its level-0 image-only and geobridge runs
are the same runs).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from _study import (
    FINAL_WORLD,
    SMOKE_OVERRIDES,
    SMOKE_WORLD,
    RunSpec,
    add_study_arguments,
    cell,
    difference,
    recall,
    run_and_rank,
    seeds_up_level_down,
    write_report,
)

from geobridge.atomic import atomic_write_text
from geobridge.configs import resolve_config
from geobridge.data.benchmarks.world import WorldBenchmark
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import evaluate
from geobridge.evaluation.run_dataset import embed_set, resolve_directions
from geobridge.models import load_model
from geobridge.models.embedder import EmbedOptions

OUT = Path(__file__).with_suffix(".md")
SAT_CENTRIC = ("loss.edge_set=satellite-centric", "loss.options={views: [drone, street]}")
#: variant -> training overrides of configs/demo.yaml (the two-phase variant is a whole config)
VARIANTS: dict[str, tuple[str, ...]] = {
    "satellite-centric": SAT_CENTRIC,
    "satellite-centric, two phases": SAT_CENTRIC,
    "image-only": ("loss.edge_set=image-only",),
    "geobridge": ("loss.edge_set=geobridge",),
    "pairs drone-satellite": ("loss.edge_set=pairs", "loss.options={query: drone, reference: satellite}"),
    "pairs street-satellite": ("loss.edge_set=pairs", "loss.options={query: street, reference: satellite}"),
}
HUB_DIRECTIONS = ("D2P", "P2D")


def two_phase_config(epochs: int) -> dict[str, Any]:
    """configs/demo.yaml with GLEAM-C's two phases in place of its one: street and satellite
    alone for half the epochs, then every view."""
    config = yaml.safe_load(resolve_config("demo").read_text(encoding="utf-8"))
    del config["optim"]["epochs"]
    first = epochs // 2
    config["phases"] = [
        {"name": "one-source", "epochs": first, "data": {"views": ["street", "satellite", "text"]}},
        {
            "name": "all-sources",
            "epochs": epochs - first,
            "data": {"views": ["drone", "street", "satellite", "text"]},
        },
    ]
    return config


def spec_for(variant: str, seed: int, epochs: int, smoke: bool) -> RunSpec:
    world = SMOKE_WORLD if smoke else FINAL_WORLD
    budget = SMOKE_OVERRIDES if smoke else [f"optim.epochs={epochs}"]
    if variant == "satellite-centric, two phases":
        config = two_phase_config(2 if smoke else epochs)
        extra = ["data.batch_size=8"] if smoke else []
        return RunSpec("satellite-centric-two-phases", world, (*VARIANTS[variant], *extra), seed, config)
    # same overrides, in the same order, as anchor_vs_capture.py: the runs are shared
    overrides = (
        (*VARIANTS[variant], *budget)
        if variant.startswith(("satellite", "pairs"))
        else (
            f"loss.edge_set={variant}",
            *budget,
        )
    )
    return RunSpec(variant.replace(" ", "-"), world, overrides, seed)


def hub_ranks(record: dict[str, Any], manifest: Path) -> dict[str, list[int]]:
    """Drone <-> street through the satellite hub: each query is replaced by its top-1 satellite
    tile of the test gallery, which is then ranked against the other view (protocol geobridge).
    Cached beside the run (``hub.json``)."""
    path = Path(record["model_dir"]).parents[2] / "hub.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    model = load_model(record["model_dir"]).eval()
    benchmark = WorldBenchmark(manifest, split="test")
    options = EmbedOptions(batch_size=64, progress=False)
    out: dict[str, list[int]] = {}
    with torch.no_grad():
        for direction in resolve_directions(benchmark, list(HUB_DIRECTIONS)):
            query = embed_set(model, benchmark.query_set(direction), options).embeddings
            to_sat = next(
                d
                for d in resolve_directions(benchmark, None)
                if d.query == direction.query and d.gallery.value == "satellite"
            )
            satellites = embed_set(model, benchmark.gallery_parts(to_sat)[0], options).embeddings
            gallery = embed_set(model, benchmark.gallery_parts(direction)[0], options).embeddings
            hub = satellites.emb[np.argmax(query.emb @ satellites.emb.T, axis=1)]
            routed = Embeddings(emb=hub, ids=query.ids, lat=query.lat, lon=query.lon)
            result = evaluate(routed, gallery, "geobridge")
            out[direction.name] = [int(r) for r in result.per_query["rank"]]
    atomic_write_text(path, json.dumps(out) + "\n")
    return out


def with_hub(record: dict[str, Any], manifest: Path) -> dict[str, Any]:
    """The record with its hub-routed ranks under ``"ranks"`` as ``D2P via S`` and ``P2D via S``."""
    routed = hub_ranks(record, manifest)
    merged = copy.deepcopy(record)
    merged["ranks"].update({f"{name} via S": ranks for name, ranks in routed.items()})
    return merged


def report(runs: dict[str, list[dict[str, Any]]], epochs: int) -> str:
    done = {v: rs for v, rs in runs.items() if rs}
    n_runs = sum(len(rs) for rs in done.values())
    minutes = sum(r["seconds"] for rs in done.values() for r in rs) / 60
    measured = sorted(r["measured"].split(",")[0] for rs in done.values() for r in rs)
    first = next(iter(done.values()))[0]
    queries = len(first["ranks"]["D2S"])
    lines = [
        "# GLEAM-C on the embedded world: a satellite hub, direct edges, pairs; one phase or two (issue #16)",
        "",
        "Written by `benchmarks/gleam_c_study.py` (its docstring has the recipe); the Reading section is "
        f"hand-written and kept across runs. The demo's world, {queries} test places in 3 held-out districts "
        f"(chance R@1 {100 / queries:.2f}); `configs/demo.yaml`, {epochs} epochs per run; {n_runs} runs, "
        f"{minutes:.0f} process-minutes (one thread each), measured {measured[0]} to {measured[-1]}.",
        "",
        "## R@1 per direction",
        "",
        "Mean over the seeds. `via S`: drone <-> street through the satellite hub (the query's top-1 "
        "satellite tile stands in for it).",
        "",
        "| variant | seeds | D2S | S2D | P2S | S2P | D2P direct | D2P via S | P2D direct | P2D via S |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = ("D2S", "S2D", "P2S", "S2P", "D2P", "D2P via S", "P2D", "P2D via S")
    for variant, rs in done.items():
        cells = [f"{recall(rs, n):.1f}" if n in rs[0]["ranks"] else "-" for n in names]
        seeds = " ".join(str(r["spec"]["seed"]) for r in rs)
        lines.append(f"| {variant} | {seeds} | " + " | ".join(cells) + " |")

    def compare(
        label: str, a: str, b: str, a_dirs: tuple[str, ...], b_dirs: tuple[str, ...] | None = None
    ) -> str:
        """``a`` minus ``b`` over the queries of ``a_dirs`` (``b_dirs``: the same queries under
        other names in ``b``, e.g. the hub route of a direction)."""
        ra, rb = done.get(a, []), done.get(b, [])
        n = min(len(ra), len(rb))
        if n == 0:
            return f"| {label} | not run | | |"
        b_dirs = b_dirs or a_dirs
        renamed = [dict(r, ranks={x: r["ranks"][y] for x, y in zip(a_dirs, b_dirs)}) for r in rb[:n]]
        d = difference(ra[:n], renamed, a_dirs)
        return f"| {label} | {n} | {cell(d)} | {seeds_up_level_down(ra[:n], renamed, a_dirs)} |"

    to_sat = ("D2S", "S2D", "P2S", "S2P")
    cross, via = ("D2P", "P2D"), ("D2P via S", "P2D via S")
    lines += [
        "",
        "## The claims, paired",
        "",
        "R@1 difference (percentage points) over the named directions' queries pooled, with its 95% paired "
        "bootstrap interval (**bold**: excludes 0), and the seeds where the first is above / level / below.",
        "",
        "| comparison | seeds | difference (95% interval) | seeds up / level / down |",
        "|---|---|---|---|",
        compare(
            "satellite-centric - geobridge, to and from satellite (D2S S2D P2S S2P)",
            "satellite-centric",
            "geobridge",
            to_sat,
        ),
        compare(
            "satellite-centric - image-only, to and from satellite", "satellite-centric", "image-only", to_sat
        ),
        compare(
            "satellite-centric - pairs drone-satellite, D2S S2D",
            "satellite-centric",
            "pairs drone-satellite",
            ("D2S", "S2D"),
        ),
        compare(
            "satellite-centric - pairs street-satellite, P2S S2P",
            "satellite-centric",
            "pairs street-satellite",
            ("P2S", "S2P"),
        ),
        compare(
            "satellite-centric: via S - direct, drone <-> street",
            "satellite-centric",
            "satellite-centric",
            via,
            cross,
        ),
        compare("image-only: via S - direct, drone <-> street", "image-only", "image-only", via, cross),
        compare("geobridge: via S - direct, drone <-> street", "geobridge", "geobridge", via, cross),
        compare(
            "geobridge direct - satellite-centric via S, drone <-> street",
            "geobridge",
            "satellite-centric",
            cross,
            via,
        ),
        compare(
            "image-only direct - satellite-centric via S, drone <-> street",
            "image-only",
            "satellite-centric",
            cross,
            via,
        ),
        compare(
            "two phases - one phase (satellite-centric), to and from satellite",
            "satellite-centric, two phases",
            "satellite-centric",
            to_sat,
        ),
        compare(
            "two phases - one phase (satellite-centric), drone <-> street via S",
            "satellite-centric, two phases",
            "satellite-centric",
            via,
        ),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME"
    )
    add_study_arguments(
        parser, OUT, "epochs per run (12: the budget of anchor_vs_capture.md's learning curve)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.out = [0], None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # two studies share the 2 cores
    text_store: dict = {}
    with tempfile.TemporaryDirectory(prefix="gleam-c-study-") as scratch:
        cache = args.cache or Path(scratch)
        out: Path = args.out or Path(scratch) / "gleam_c_study.md"
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
        for seed in args.seeds:  # seed-major: an early stop leaves every variant with the same seeds
            for variant in args.variants:
                spec = spec_for(variant, seed, args.epochs, args.smoke)
                record = run_and_rank(spec, cache, text_store)
                if not variant.startswith("pairs"):  # a pair model has one trained edge: no hub
                    record = with_hub(record, Path(record["manifest"]))
                runs[variant].append(record)
                write_report(out, report(runs, args.epochs))
        write_report(out, report(runs, args.epochs))
        print(out.read_text(encoding="utf-8") if args.out is None else f"wrote {out}")


if __name__ == "__main__":
    main()
