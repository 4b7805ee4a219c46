"""``geobridge demo``: GeoBridge end to end on the embedded world, on a CPU, in minutes.

1. renders a procedural world (drone orthophoto, street panorama, satellite + one text per
   location) into ``OUT/world/``; its test split is three districts never seen in training whose
   styles (old town, suburb, ...) do occur in training districts: a new town made of kinds of
   place seen in training, like VIGOR's cross-area split (new cities, same kind of city);
2. trains three small models with the same recipe (``configs/demo.yaml``) and different edge
   sets, GeoBridge's ablation: ``image-only`` (d-s, s-p, p-d), ``text-only`` (t-d, t-p, t-s) and
   ``geobridge`` (both, summed); the variants share one frozen pretrained text tower, so each
   text is encoded once for all of them;
3. evaluates every direction among drone, street and satellite plus text -> each view on the
   held-out locations (protocol ``geobridge``), prints the tables beside the paper's numbers,
   checks the paper's finding with a paired bootstrap interval per street direction, and
   writes ``OUT/metrics.json``, ``OUT/ablation.json``, ``OUT/report.html`` (recall curves and
   example queries with their top-5) and ``OUT/model/`` (the GeoBridge model, loadable by
   ``geobridge.models.load_model`` and every command taking ``--model``) and ``OUT/gallery/`` (the
   satellite views of the held-out locations embedded by that model, for ``geobridge locate``
   and ``geobridge serve``).
"""

from __future__ import annotations

import html
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_write_text
from geobridge.views import GEOBRIDGE_DIRECTIONS, View
from geobridge.world.dataset import WorldDatasetSpec, generate_world_dataset

#: The ablation rows, in the paper's order, and the loss preset each one trains with.
VARIANTS: tuple[str, ...] = ("image-only", "text-only", "geobridge")
#: The directions of the paper's finding (image-only collapses street <-> aerial, fused does not).
STREET_DIRECTIONS: tuple[str, ...] = ("P2D", "D2P", "P2S", "S2P")
#: Metrics written per direction (percentages), in the issue's order.
METRIC_KEYS: tuple[str, ...] = ("R@1", "R@5", "R@10", "R@1%", "AP")
#: GeoBridge on GeoLoc, R@1 (docs/methods.md#geoloc-numbers): Table 5 for the fused model (D2S from the
#: ablation, 45.06); the image-only ablation row publishes P2D and P2S only; text-only is given as
#: a range (35-43) without per-direction values.
PAPER_R1: dict[str, dict[str, float]] = {
    "geobridge": {"D2S": 45.06, "S2D": 44.81, "D2P": 41.22, "P2D": 41.15, "P2S": 38.87, "S2P": 39.20},
    "image-only": {"P2D": 4.90, "P2S": 6.43},
}
PAPER_TEXT_ONLY_RANGE = "35-43"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"  # shipped inside the package


#: The world the demo renders (small enough to render, train and test in minutes). GeoLoc-like
#: choices, each measured in ``benchmarks/anchor_study.md``: the drone view is a north-up orthomosaic
#: crop (GeoLoc's kind, not an oblique photo); texts keep only cues every view shares (no compass
#: bearings: drone and street views face a random heading); the held-out area is three districts of
#: different styles, each style also present in training (a new town, like VIGOR's cross-area
#: split; 10 regions from 5 styles), which gives 300 test queries.
DEMO_WORLD = WorldDatasetSpec(
    locations=1500,
    size=64,
    seed=0,
    world_size_m=2000.0,
    regions=10,
    test_regions=3,
    test_region_policy="shared-style",
    drone_view="orthophoto",
    text_compass=False,
    views=("drone", "street", "satellite"),
)


@dataclass
class DemoResult:
    """Paths written and the numbers measured by one demo run."""

    out: Path
    metrics: dict[str, dict[str, float]]  # geobridge model: direction -> metrics (+ gallery)
    ablation: dict[str, dict[str, dict[str, float]]]  # variant -> direction -> metrics
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)


def run_demo(
    out: str | Path = "demo",
    config_path: str | Path | None = None,
    overrides: list[str] | None = None,
    world: WorldDatasetSpec = DEMO_WORLD,
    variants: tuple[str, ...] = VARIANTS,
    reuse_world: bool = False,
    echo: Callable[[str], None] = print,
    progress: bool = True,
    device: str = "auto",
) -> DemoResult:
    """Render, train the ablation, evaluate, and write the demo's files under ``out``; the models
    train and run on ``device`` (``auto|cpu|cuda|cuda:N``)."""
    import torch

    from geobridge.records import read_manifest
    from geobridge.train import TrainConfig, train
    from geobridge.train.frozen_cache import cached_frozen_text_tower

    out = Path(out)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "geobridge" not in variants:
        raise ValueError(
            f"variants must include 'geobridge' and be among {', '.join(VARIANTS)}; got {', '.join(variants)}"
        )
    from geobridge.configs import resolve_config

    config_path = resolve_config(config_path) if config_path is not None else DEFAULT_CONFIG
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    manifest = out / "world" / "manifest.parquet"
    if not (reuse_world and manifest.exists()):
        echo(f"[1/3] rendering {world.locations} locations of a procedural world into {out / 'world'}")
        tick = time.perf_counter()
        manifest = generate_world_dataset(out / "world", world, workers=2, progress=progress, overwrite=True)
        seconds["world"] = time.perf_counter() - tick
    test_locations = read_manifest(manifest, split="test")
    val_locations = read_manifest(manifest, split="val")
    train_locations = read_manifest(manifest, split="train")
    train_regions = sorted({loc.region for loc in train_locations})
    echo(
        f"      {len(train_locations)} training locations from regions {', '.join(train_regions)}; "
        f"{len(test_locations)} test locations from unseen region(s) {', '.join(sorted({loc.region for loc in test_locations}))}"
    )

    # the variants share one frozen pretrained text tower: each text is encoded once for all of them
    text_features: dict[str, torch.Tensor] = {}
    results: dict[str, dict[str, Any]] = {}
    seen_region: dict[str, dict[str, Any]] = {}  # val: unseen locations of training regions
    for number, variant in enumerate(variants, start=1):
        run_dir = out / "runs" / variant
        shutil.rmtree(run_dir, ignore_errors=True)
        config = TrainConfig.load(
            config_path,
            [f"device={device}"]
            + list(overrides or [])
            + [
                f"data.manifest={manifest}",
                f"output_dir={run_dir}",
                f"loss.edge_set={variant}",
                "resume=false",
                f"progress={str(progress).lower()}",
            ],
        )
        echo(
            f"[2/3] training {number}/{len(variants)}: {variant} ({config.model.preset} preset, "
            f"{config.optim.epochs} epochs, batch {config.data.batch_size})"
        )
        tick = time.perf_counter()
        run = train(config, text_features=text_features)
        seconds[f"train {variant}"] = time.perf_counter() - tick
        echo(f"      {run.step} steps in {seconds[f'train {variant}']:.0f} s, last loss {run.final_loss:.3f}")
        tick = time.perf_counter()
        with torch.no_grad(), cached_frozen_text_tower(run.model, text_features):
            results[variant] = evaluate_directions(run.model, manifest, "test")
            if len(val_locations) > 1:
                seen_region[variant] = evaluate_directions(run.model, manifest, "val")
        seconds[f"evaluate {variant}"] = time.perf_counter() - tick
        if variant == "geobridge":
            run.model.save_pretrained(out / "model")
            tick = time.perf_counter()
            gallery_size = build_demo_gallery(out, manifest, progress=progress, device=device)
            seconds["gallery"] = time.perf_counter() - tick
            echo(f"      gallery of {gallery_size} held-out satellite views in {out / 'gallery'}")

    echo("[3/3] results on the held-out region (protocol geobridge, percentages)")
    metrics = {name: _metric_row(ev) for name, ev in results["geobridge"].items()}
    ablation = {
        variant: {name: _metric_row(ev) for name, ev in results[variant].items()} for variant in results
    }
    findings = compare_to_paper(ablation, hits_at_one(results))
    ablation_val = {
        variant: {name: _metric_row(ev) for name, ev in by.items()} for variant, by in seen_region.items()
    }
    if ablation_val:
        findings += ["on the val split (new locations of the training regions):"] + compare_to_paper(
            ablation_val, hits_at_one(seen_region)
        )
        atomic_write_text(
            out / "ablation_val.json",
            json.dumps({v: {"directions": d} for v, d in ablation_val.items()}, indent=2) + "\n",
        )
    atomic_write_text(out / "metrics.json", json.dumps({"directions": metrics}, indent=2) + "\n")
    atomic_write_text(
        out / "ablation.json",
        json.dumps({v: {"directions": d} for v, d in ablation.items()}, indent=2) + "\n",
    )
    seconds["total"] = time.perf_counter() - started
    write_report(out, results, ablation, findings, seconds)
    echo("")
    echo(metrics_table(metrics))
    echo("")
    echo(ablation_table(ablation))
    echo("")
    if ablation_val:
        echo("same ablation on the val split (unseen locations of the training regions):")
        echo(ablation_table(ablation_val))
        echo("")
    for line in findings:
        echo(line)
    echo("")
    echo("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    echo(
        f"wrote {out / 'metrics.json'}, {out / 'ablation.json'}, {out / 'report.html'}, {out / 'model'}/, {out / 'gallery'}/"
    )
    return DemoResult(out=out, metrics=metrics, ablation=ablation, seconds=seconds, findings=findings)


def build_demo_gallery(out: Path, manifest: Path, progress: bool = False, device: str = "auto") -> int:
    """``OUT/gallery/``: the held-out locations' satellite views embedded by the saved ``OUT/model/``
    (loaded back from disk, so the gallery records the model folder it must be queried with), with
    the location estimate's radius calibrated on the same places' other views."""
    from geobridge.models import load_model
    from geobridge.retrieval.calibration import calibrate_gallery, query_views
    from geobridge.retrieval.gallery import Gallery
    from geobridge.retrieval.sources import read_locations

    model = load_model(out / "model", device=device).eval()
    places = read_locations(manifest, "satellite", split="test")  # with the world's tile footprints
    gallery = Gallery.build(
        model, places, "satellite", out=out / "gallery", model_path=out / "model", progress=progress
    )
    gallery.set_calibration(calibrate_gallery(gallery, places, query_views(gallery), split="test"))
    return int(gallery.info.size)


def evaluate_directions(
    model: Any, manifest: str | Path, split: str = "test", progress: bool = False
) -> dict[str, Any]:
    """Every GeoBridge direction (six image + text -> each view) the model has among the
    ``split`` locations of ``manifest``, scored as ``geobridge evaluate --model`` does
    (:func:`~geobridge.evaluation.run_dataset.evaluate_model_on_dataset`, protocol ``geobridge``);
    each :class:`~geobridge.evaluation.run_dataset.DatasetResult` carries the items it scored."""
    from geobridge.data.benchmarks.world import WorldBenchmark
    from geobridge.evaluation.run_dataset import evaluate_model_on_dataset

    benchmark = WorldBenchmark(manifest, split=split)
    have = set(model.views) | ({View.TEXT} if model.has_text else set())
    directions = [
        d for d in GEOBRIDGE_DIRECTIONS if d in benchmark.directions() and {d.query, d.gallery} <= have
    ]
    return evaluate_model_on_dataset(
        model, benchmark, directions=directions, batch_size=64, progress=progress
    )


def _metric_row(result: Any) -> dict[str, float]:
    row = {key: round(float(result.metrics[key]), 2) for key in METRIC_KEYS}
    row["gallery"] = int(result.n_gallery)
    return row


def compare_to_paper(
    ablation: dict[str, dict[str, dict[str, float]]],
    hits: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """The paper's finding, checked on this run: fused beats image-only street<->aerial.

    ``hits`` (variant -> direction -> per-query 0/1 hits at rank 1, same queries in the same
    order for every variant) adds a paired bootstrap interval of each difference; a direction
    then counts as a win only when fused is better *and* the interval excludes zero.
    """
    from geobridge.evaluation.significance import paired_bootstrap

    lines = []
    fused, image = ablation.get("geobridge", {}), ablation.get("image-only", {})
    if not image:
        return ["image-only was not trained: no ablation comparison"]
    wins = []
    for name in STREET_DIRECTIONS:
        if name in fused and name in image:
            a, b = fused[name]["R@1"], image[name]["R@1"]
            line = f"{name}: geobridge R@1 {a:.2f} vs image-only {b:.2f} -> {'fused better' if a > b else 'fused NOT better'}"
            won = a > b
            if hits and name in hits.get("geobridge", {}) and name in hits.get("image-only", {}):
                diff = paired_bootstrap(hits["geobridge"][name], hits["image-only"][name])
                line += (
                    f" (difference {diff.difference:+.2f}, {diff.confidence:.0%} interval {diff.low:+.2f} to "
                    f"{diff.high:+.2f} over {diff.n_queries} queries: {'significant' if diff.significant else 'within noise'})"
                )
                won = won and diff.significant and diff.difference > 0
            wins.append(won)
            lines.append(line)
    verdict = "reproduced" if wins and all(wins) else "NOT reproduced on every street direction"
    return [
        f"paper's finding (fused beats image-only on street<->drone and street<->satellite): {verdict}"
    ] + lines


def hits_at_one(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-query 0/1 hits at rank 1 of every variant and direction (ranks are 0-based)."""
    return {
        variant: {name: (ev.per_query["rank"] == 0).astype(int) for name, ev in by.items()}
        for variant, by in results.items()
    }


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    header = "| direction | " + " | ".join(METRIC_KEYS) + " | gallery | chance R@1 |"
    lines = [header, "|" + "---|" * (len(METRIC_KEYS) + 3)]
    for name, row in metrics.items():
        chance = 100.0 / row["gallery"] if row["gallery"] else float("nan")
        lines.append(
            f"| {name} | "
            + " | ".join(f"{row[k]:.2f}" for k in METRIC_KEYS)
            + f" | {row['gallery']} | {chance:.2f} |"
        )
    return "\n".join(lines)


def ablation_table(ablation: dict[str, dict[str, dict[str, float]]]) -> str:
    """R@1 per direction: each trained variant beside the paper's published value."""
    names = [d.name for d in GEOBRIDGE_DIRECTIONS]
    header = "| R@1 | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    for variant in VARIANTS:
        if variant in ablation:
            row = ablation[variant]
            lines.append(
                f"| {variant} (this world) | "
                + " | ".join(f"{row[n]['R@1']:.2f}" if n in row else "-" for n in names)
                + " |"
            )
        paper = PAPER_R1.get(variant, {})
        if variant == "text-only":
            cells = [PAPER_TEXT_ONLY_RANGE if n in names[:6] else "-" for n in names]
        else:
            cells = [f"{paper[n]:.2f}" if n in paper else "-" for n in names]
        lines.append(f"| {variant} (paper, GeoLoc) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    out: Path,
    results: dict[str, dict[str, Any]],
    ablation: dict,
    findings: list[str],
    seconds: dict[str, float],
) -> Path:
    """``report.html``: tables, recall curves per variant and example queries with their top-5."""
    from geobridge.evaluation.report import plot_recall_curves

    sections = []
    for variant, by_direction in results.items():
        curves = dict(by_direction)
        image = plot_recall_curves(
            curves, out / f"recall_{variant}.png", title=f"{variant}: recall@K on the held-out region"
        )
        sections.append(
            f'<h3>{html.escape(variant)}</h3><img src="{image.name}" alt="recall curves of {variant}">'
        )
    examples = []
    fused = results["geobridge"]
    for name in ("P2D", "P2S", "D2S"):
        if name not in fused:
            continue
        result = fused[name]
        page = out / f"examples_{name}.html"
        _write_examples(fused[name], page, name)
        examples.append(
            f'<li><a href="{page.name}">{name}</a>: a few queries with their top-5 '
            f"(R@1 {result.metrics['R@1']:.1f}%)</li>"
        )
    metrics = {name: _metric_row(ev) for name, ev in fused.items()}
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>geobridge demo</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} img{{max-width:48%}}</style></head><body>
<h1>GeoBridge on the embedded world</h1>
<p>Test locations come from a region not seen in training (a new area whose style family
occurs in a training region, like VIGOR's cross-area split). Protocol <code>geobridge</code>
(one positive per query; AP = mean reciprocal rank; R@1% = hit within the top max(1, int(0.01 N))).</p>
<h2>GeoBridge model, every direction</h2>{_html_table(metrics_table(metrics))}
<h2>Ablation (R@1) beside the paper</h2>{_html_table(ablation_table(ablation))}
<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in findings)}</ul>
<h2>Recall curves</h2>{"".join(sections)}
<h2>Example queries (GeoBridge model)</h2><ul>{"".join(examples)}</ul>
<p>Timings: {html.escape(", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))}</p>
</body></html>
"""
    return atomic_write_text(out / "report.html", body)


def _write_examples(result: Any, page: Path, name: str) -> None:
    from geobridge.evaluation.protocols import good_items
    from geobridge.evaluation.report import write_html_examples

    query, gallery = result.query_items, result.gallery_items
    write_html_examples(
        query_paths=list(query.paths) if query.paths is not None else [None] * len(query),
        gallery_paths=list(gallery.paths) if gallery.paths is not None else [None] * len(gallery),
        top_indices=result.per_query["top_indices"],
        truth=good_items(result, query.ids, gallery.ids),
        path=page,
        ranks=result.per_query["rank"],
        query_ids=list(query.ids),
        gallery_ids=list(gallery.ids),
        title=f"{name}: example queries and their top-5",
        n_examples=8,
    )


def _html_table(markdown: str) -> str:
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if not line.startswith("|---")]
    head, *rest = rows
    out = "<table><tr>" + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head) + "</tr>"
    for row in rest:
        out += "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in row) + "</tr>"
    return out + "</table>"
