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

:func:`run_demo` is these steps in order, each a function below; what they measure is gathered
into one :class:`DemoReport` (tables as rows of values) that two templates render alike:
``report_templates/demo.md.j2`` (the Markdown the command prints) and ``demo.html.j2``
(``OUT/report.html``, autoescaped). :class:`DemoReporter` holds every line the demo says.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from geobridge.atomic import atomic_write_text
from geobridge.views import GEOBRIDGE_DIRECTIONS, View
from geobridge.world.dataset import WorldDatasetSpec, generate_world_dataset

if TYPE_CHECKING:
    import jinja2
    import torch

    from geobridge.train import TrainConfig, TrainResult

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
#: The directions whose example queries (with their top-5) the report links to.
EXAMPLE_DIRECTIONS: tuple[str, ...] = ("P2D", "P2S", "D2S")


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

#: direction name -> its :class:`~geobridge.evaluation.run_dataset.DatasetResult`
Scores = dict[str, Any]
#: direction name -> metric -> value (percentages; ``gallery`` is the gallery size)
MetricRows = dict[str, dict[str, float]]


@dataclass
class DemoResult:
    """Paths written and the numbers measured by one demo run."""

    out: Path
    metrics: dict[str, dict[str, float]]  # geobridge model: direction -> metrics (+ gallery)
    ablation: dict[str, dict[str, dict[str, float]]]  # variant -> direction -> metrics
    seconds: dict[str, float] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)


# --- the values the steps hand each other ---------------------------------------------------------


@dataclass(frozen=True)
class RenderedWorld:
    """The rendered world: its manifest and which regions and how many locations each split holds."""

    manifest: Path
    train_regions: tuple[str, ...]
    test_regions: tuple[str, ...]
    train_locations: int
    val_locations: int
    test_locations: int

    @property
    def has_val(self) -> bool:
        """Whether the val split (new locations of the training regions) is big enough to score."""
        return self.val_locations > 1


@dataclass
class VariantScores:
    """One trained variant's scores: every direction on the held-out test split, and on val."""

    test: Scores
    val: Scores = field(default_factory=dict)  # empty when the world has no usable val split


@dataclass
class DemoNumbers:
    """The numbers the demo reports and writes as JSON, with the paper's finding checked on them."""

    metrics: MetricRows  # the geobridge model on the test split
    ablation: dict[str, MetricRows]  # variant -> its rows on the test split
    ablation_val: dict[str, MetricRows]  # variant -> its rows on the val split (empty: none)
    findings: list[str]


#: One table cell: a float is shown with two decimals, an int as is, ``None`` as "-".
Cell = Union[float, int, str, None]


@dataclass(frozen=True)
class Table:
    """A table as values (not as Markdown or HTML): the templates format it both ways alike."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class RecallCurve:
    """A variant's recall@K plot, by its file name inside the output folder."""

    variant: str
    image: str


@dataclass(frozen=True)
class ExampleLink:
    """A page of example queries with their top-5, by file name, and the direction's R@1 (%)."""

    direction: str
    page: str
    r1: float


@dataclass(frozen=True)
class DemoReport:
    """Everything the report says, as values; ``demo.md.j2`` and ``demo.html.j2`` render it."""

    metrics: Table
    ablation: Table
    ablation_val: Table | None
    findings: tuple[str, ...]
    recall_curves: tuple[RecallCurve, ...] = ()
    examples: tuple[ExampleLink, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()


# --- the demo, step by step -----------------------------------------------------------------------


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
    train and run on ``device`` (``auto|cpu|cuda|cuda:N``). Everything it says goes to ``echo``."""
    out = Path(out)
    check_variants(variants)
    recipe = demo_recipe(config_path)
    say, clock = DemoReporter(echo), Stopwatch()
    out.mkdir(parents=True, exist_ok=True)

    manifest = out / "world" / "manifest.parquet"
    if not (reuse_world and manifest.exists()):
        say.rendering(world, manifest.parent)
        with clock.step("world"):
            manifest = render_world(manifest.parent, world, progress)
    rendered = read_world(manifest)
    say.world(rendered)

    text_features: dict[str, torch.Tensor] = {}  # one frozen text tower: each text encoded once for all
    scores: dict[str, VariantScores] = {}
    for number, variant in enumerate(variants, start=1):
        config = variant_config(
            recipe, overrides, manifest, out / "runs" / variant, variant, device, progress
        )
        say.training(number, len(variants), variant, config)
        with clock.step(f"train {variant}"):
            run = train_variant(config, text_features)
        say.trained(run, clock.seconds[f"train {variant}"])
        with clock.step(f"evaluate {variant}"):
            scores[variant] = evaluate_variant(run.model, rendered, text_features)
        if variant == "geobridge":
            with clock.step("gallery"):
                size = save_model_and_gallery(run.model, out, manifest, progress, device)
            say.gallery(size, out / "gallery")

    say.results_follow()
    numbers = measure(scores)
    write_numbers(out, numbers)
    clock.seconds["total"] = time.perf_counter() - clock.started
    curves, examples = write_figures(out, scores)
    report = build_report(numbers, curves, examples, clock.seconds)
    write_report(out, report)
    say.summary(report, out)
    return DemoResult(
        out=out,
        metrics=numbers.metrics,
        ablation=numbers.ablation,
        seconds=clock.seconds,
        findings=numbers.findings,
    )


def check_variants(variants: tuple[str, ...]) -> None:
    """Refuse an ablation the demo cannot report: unknown rows, or none for the GeoBridge model."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "geobridge" not in variants:
        raise ValueError(
            f"variants must include 'geobridge' and be among {', '.join(VARIANTS)}; got {', '.join(variants)}"
        )


def demo_recipe(config_path: str | Path | None) -> Path:
    """The training recipe every variant shares: a path or shipped name, else ``configs/demo.yaml``."""
    from geobridge.configs import resolve_config

    return Path(resolve_config(config_path)) if config_path is not None else DEFAULT_CONFIG


def render_world(folder: Path, world: WorldDatasetSpec, progress: bool) -> Path:
    """Render ``world`` into ``folder`` afresh (two workers) and return its manifest."""
    return generate_world_dataset(folder, world, workers=2, progress=progress, overwrite=True)


def read_world(manifest: Path) -> RenderedWorld:
    """Which regions and how many locations each split of a rendered world holds."""
    from geobridge.records import read_manifest

    split = {name: read_manifest(manifest, split=name) for name in ("train", "val", "test")}
    return RenderedWorld(
        manifest=manifest,
        train_regions=tuple(sorted({loc.region for loc in split["train"]})),
        test_regions=tuple(sorted({loc.region for loc in split["test"]})),
        train_locations=len(split["train"]),
        val_locations=len(split["val"]),
        test_locations=len(split["test"]),
    )


def variant_config(
    recipe: Path,
    overrides: list[str] | None,
    manifest: Path,
    run_dir: Path,
    variant: str,
    device: str,
    progress: bool,
) -> TrainConfig:
    """The shared recipe trained on ``manifest`` with ``variant``'s edge set, from scratch in ``run_dir``."""
    from geobridge.train import TrainConfig

    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: never resume an older demo's checkpoint
    return TrainConfig.load(
        recipe,
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


def train_variant(config: TrainConfig, text_features: dict[str, torch.Tensor]) -> TrainResult:
    """Train one ablation variant, sharing ``text_features`` so each text is encoded once overall."""
    from geobridge.train import train

    return train(config, text_features=text_features)


def evaluate_variant(
    model: Any, world: RenderedWorld, text_features: dict[str, torch.Tensor]
) -> VariantScores:
    """Score every direction on the held-out test split, and on val (unseen places of training regions)."""
    import torch

    from geobridge.train.frozen_cache import cached_frozen_text_tower

    with torch.no_grad(), cached_frozen_text_tower(model, text_features):
        test = evaluate_directions(model, world.manifest, "test")
        val = evaluate_directions(model, world.manifest, "val") if world.has_val else {}
    return VariantScores(test=test, val=val)


def save_model_and_gallery(model: Any, out: Path, manifest: Path, progress: bool, device: str) -> int:
    """Save the GeoBridge model to ``OUT/model/`` and embed ``OUT/gallery/`` with it; the gallery's size."""
    model.save_pretrained(out / "model")
    return build_demo_gallery(out, manifest, progress=progress, device=device)


def measure(scores: dict[str, VariantScores]) -> DemoNumbers:
    """The reported numbers of every variant, and the paper's finding checked on test (and val)."""
    ablation = {variant: _metric_rows(s.test) for variant, s in scores.items()}
    findings = compare_to_paper(ablation, hits_at_one({v: s.test for v, s in scores.items()}))
    ablation_val = {variant: _metric_rows(s.val) for variant, s in scores.items() if s.val}
    if ablation_val:
        findings += ["on the val split (new locations of the training regions):"] + compare_to_paper(
            ablation_val, hits_at_one({v: s.val for v, s in scores.items() if s.val})
        )
    return DemoNumbers(
        metrics=ablation["geobridge"], ablation=ablation, ablation_val=ablation_val, findings=findings
    )


def write_numbers(out: Path, numbers: DemoNumbers) -> None:
    """``metrics.json``, ``ablation.json`` (and ``ablation_val.json``): the numbers for programs."""
    if numbers.ablation_val:
        _write_json(
            out / "ablation_val.json", {v: {"directions": d} for v, d in numbers.ablation_val.items()}
        )
    _write_json(out / "metrics.json", {"directions": numbers.metrics})
    _write_json(out / "ablation.json", {v: {"directions": d} for v, d in numbers.ablation.items()})


def write_figures(out: Path, scores: dict[str, VariantScores]) -> tuple[list[RecallCurve], list[ExampleLink]]:
    """The report's pictures: a recall-curve PNG per variant and example-query pages of the fused model."""
    from geobridge.evaluation.report import plot_recall_curves

    curves = []
    for variant, variant_scores in scores.items():
        image = plot_recall_curves(
            dict(variant_scores.test),
            out / f"recall_{variant}.png",
            title=f"{variant}: recall@K on the held-out region",
        )
        curves.append(RecallCurve(variant=variant, image=image.name))
    examples = []
    fused = scores["geobridge"].test
    for name in EXAMPLE_DIRECTIONS:
        if name in fused:
            page = out / f"examples_{name}.html"
            _write_examples(fused[name], page, name)
            examples.append(ExampleLink(direction=name, page=page.name, r1=float(fused[name].metrics["R@1"])))
    return curves, examples


def build_report(
    numbers: DemoNumbers,
    curves: list[RecallCurve] | tuple[RecallCurve, ...] = (),
    examples: list[ExampleLink] | tuple[ExampleLink, ...] = (),
    seconds: dict[str, float] | None = None,
) -> DemoReport:
    """Gather what the report says into one value, tables as rows of numbers, for both templates."""
    return DemoReport(
        metrics=metrics_rows(numbers.metrics),
        ablation=ablation_rows(numbers.ablation),
        ablation_val=ablation_rows(numbers.ablation_val) if numbers.ablation_val else None,
        findings=tuple(numbers.findings),
        recall_curves=tuple(curves),
        examples=tuple(examples),
        timings=tuple((seconds or {}).items()),
    )


def write_report(out: Path, report: DemoReport) -> Path:
    """``OUT/report.html``: the report rendered by ``demo.html.j2`` (tables, findings, curves, examples)."""
    return atomic_write_text(out / "report.html", render_html(report))


# --- the report's tables and templates ------------------------------------------------------------


def metrics_rows(metrics: MetricRows) -> Table:
    """The GeoBridge model's table: every metric per direction, its gallery size and chance R@1."""
    rows: list[tuple[Cell, ...]] = []
    for name, row in metrics.items():
        gallery = int(row["gallery"])
        chance = 100.0 / gallery if gallery else float("nan")
        rows.append((name, *(float(row[k]) for k in METRIC_KEYS), gallery, chance))
    return Table(header=("direction", *METRIC_KEYS, "gallery", "chance R@1"), rows=tuple(rows))


def ablation_rows(ablation: dict[str, MetricRows]) -> Table:
    """The ablation's table: R@1 per direction of each trained variant beside the paper's value."""
    names = [d.name for d in GEOBRIDGE_DIRECTIONS]
    rows: list[tuple[Cell, ...]] = []
    for variant in VARIANTS:
        if variant in ablation:
            row = ablation[variant]
            rows.append(
                (f"{variant} (this world)", *(float(row[n]["R@1"]) if n in row else None for n in names))
            )
        paper = PAPER_R1.get(variant, {})
        if variant == "text-only":
            cells: list[Cell] = [PAPER_TEXT_ONLY_RANGE if n in names[:6] else None for n in names]
        else:
            cells = [paper.get(n) for n in names]
        rows.append((f"{variant} (paper, GeoLoc)", *cells))
    return Table(header=("R@1", *names), rows=tuple(rows))


def metrics_table(metrics: MetricRows) -> str:
    """The GeoBridge model's table (:func:`metrics_rows`) as Markdown."""
    return _templates().get_template("table.md.j2").render(table=metrics_rows(metrics))


def ablation_table(ablation: dict[str, MetricRows]) -> str:
    """R@1 per direction: each trained variant beside the paper's published value, as Markdown."""
    return _templates().get_template("table.md.j2").render(table=ablation_rows(ablation))


def render_markdown(report: DemoReport) -> str:
    """The report as Markdown (``demo.md.j2``): what ``geobridge demo`` prints when it is done."""
    return _templates().get_template("demo.md.j2").render(report=report)


def render_html(report: DemoReport) -> str:
    """The report as an HTML page (``demo.html.j2``, autoescaped): ``OUT/report.html``."""
    return _templates().get_template("demo.html.j2").render(report=report)


def format_cell(value: Cell) -> str:
    """A table cell as both templates show it: floats with two decimals, ``None`` as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    """The report templates (``report_templates/*.j2``); ``*.html.j2`` are autoescaped, and a name
    a template uses but is not given is an error, never an empty string."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("geobridge", "report_templates"),
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = format_cell
    return env


# --- what the demo says ---------------------------------------------------------------------------


class Stopwatch:
    """Seconds per named step, in the order they ran (the report's timings)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block under ``name`` (kept only when the block finishes)."""
        tick = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - tick


class DemoReporter:
    """Every line ``run_demo`` says, in one place: progress while it works, the report when done."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def rendering(self, world: WorldDatasetSpec, folder: Path) -> None:
        self.echo(f"[1/3] rendering {world.locations} locations of a procedural world into {folder}")

    def world(self, world: RenderedWorld) -> None:
        self.echo(
            f"      {world.train_locations} training locations from regions {', '.join(world.train_regions)}; "
            f"{world.test_locations} test locations from unseen region(s) {', '.join(world.test_regions)}"
        )

    def training(self, number: int, total: int, variant: str, config: TrainConfig) -> None:
        self.echo(
            f"[2/3] training {number}/{total}: {variant} ({config.model.preset} preset, "
            f"{config.optim.epochs} epochs, batch {config.data.batch_size})"
        )

    def trained(self, run: TrainResult, seconds: float) -> None:
        loss = "-" if run.final_loss is None else f"{run.final_loss:.3f}"
        self.echo(f"      {run.step} steps in {seconds:.0f} s, last loss {loss}")

    def gallery(self, size: int, folder: Path) -> None:
        self.echo(f"      gallery of {size} held-out satellite views in {folder}")

    def results_follow(self) -> None:
        self.echo("[3/3] results on the held-out region (protocol geobridge, percentages)")

    def summary(self, report: DemoReport, out: Path) -> None:
        self.echo("")
        for line in render_markdown(report).splitlines():
            self.echo(line)
        self.echo(
            f"wrote {out / 'metrics.json'}, {out / 'ablation.json'}, {out / 'report.html'}, "
            f"{out / 'model'}/, {out / 'gallery'}/"
        )


# --- evaluation and the paper's finding (also used by benchmarks/) ---------------------------------


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


def _metric_rows(scores: Scores) -> MetricRows:
    return {name: _metric_row(result) for name, result in scores.items()}


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2) + "\n")


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
