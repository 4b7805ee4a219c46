"""PLANET ablation on the embedded world: does the physical-consistency loss help text -> satellite?

    HF_HUB_OFFLINE=1 python benchmarks/planet_ablation.py --curve            # the baseline's learning curve
    HF_HUB_OFFLINE=1 python benchmarks/planet_ablation.py --steps 200        # the grid at a chosen budget
    HF_HUB_OFFLINE=1 python benchmarks/planet_ablation.py --smoke            # seconds; writes to a temp file

The grid (issue #16): lambda in {0, 0.1, 0.5, 1} and each physical term alone (colour,
structure, texture, at ``--single-lambda``) x the satellite view captured with the place's
common conditions ("together", ``capture_variation`` 0) or under its own sun, exposure and
season ("apart", ``capture_variation`` 1) x ``--seeds``. Every variant of a seed starts from
the same weights (model and physical head) and sees the same batches; lambda=0 is the plain
text-satellite InfoNCE baseline and the reference of every paired bootstrap interval (queries
paired, each query's hit averaged over the seeds first).

Recipe (configs/planet.yaml, the trainer's loss without its loop): `demo` preset (tiny CNN
satellite tower from random init, offline MiniLM text tower with only its last layer trainable,
the states entering that layer cached once per split), Adam at 1e-3 on the satellite tower,
the last MiniLM layer, both projections, the logit scale and the physical head. A fully
frozen text tower would make every lambda give the same retrieval model: L_phy reaches the
embedding only through trainable text layers (the image signatures carry no gradient).
World: the demo's layout (10 districts, 3 of them held out together, shared styles, texts
without bearings), satellite view only. Evaluation: exact cosine ranking of the held-out test
districts, ``geobridge.evaluation.protocols.evaluate(..., "geobridge")``. The learning curve
(``--curve``: the baseline, seed 0) scores the test split and the val split (unseen places of
training districts) every ``--curve-every`` steps; each capture's budget (``--capture-steps``)
is where the baseline's test recall stops rising (tuned for the baseline only, so any
leak favours lambda=0).

Each finished run (and each capture's curve) is saved as JSON under ``--cache``; a rerun with
the same cache skips what is there, and the report is rebuilt from every saved result of the
current budget, so several processes (e.g. one per ``--capture-variation``) can share the work.
Torch runs on one thread: on a shared 2-core machine two threads spin-wait on each other
(measured: 5-8 s a step on two threads against 0.6-1.8 s on one). The report keeps the
hand-written ``## Reading``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from geobridge.atomic import atomic_write_text
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import evaluate
from geobridge.evaluation.significance import paired_bootstrap
from geobridge.losses.edges import Edge, EdgeSet
from geobridge.losses.planet import PlanetConfig, PlanetObjective, build_planet_objective, physical_key
from geobridge.models import create_model
from geobridge.models.towers.base import TokenOutput
from geobridge.models.towers.sentence_transformers import additive_attention_mask
from geobridge.records import Location, read_manifest
from geobridge.views import View
from geobridge.world.dataset import generate_world_dataset

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_suffix(".md")
#: capture_variation of the satellite view per capture setting (the anchor study's "apart" is 1).
CAPTURES: dict[str, float] = {"together": 0.0, "apart": 1.0}
KS: tuple[int, ...] = (1, 5, 10)
TERM_NAMES = {"color": "colour", "struc": "structure", "tex": "texture"}
REFERENCE = "lambda=0"


@dataclass(frozen=True)
class Variant:
    """One loss of the grid: a weight on L_phy and the physical terms it sums (None: all three)."""

    name: str
    lambda_phy: float
    term: str | None = None  # one of DESCRIPTORS when a single term is kept


def grid_variants(lambdas: list[float], single_lambda: float) -> list[Variant]:
    """lambda=0 (the reference) first, the other lambdas, then each term alone."""
    out = [Variant(f"lambda={lam:g}", lam) for lam in sorted(set([0.0] + lambdas))]
    out += [
        Variant(f"{TERM_NAMES[t]} alone (lambda={single_lambda:g})", single_lambda, t) for t in TERM_NAMES
    ]
    return out


@dataclass
class Split:
    """A split held in memory: satellite pixels and the cached states entering MiniLM's last layer."""

    locations: list[Location]
    pixels: torch.Tensor
    hidden: torch.Tensor  # (N, L, 384)
    mask: torch.Tensor  # (N, L) bool, True on real tokens

    def text_rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.mask[index]
        length = int(mask.sum(1).max())  # trim to the longest text in this batch
        return self.hidden[index, :length], mask[:, :length]


class TextBelowLastLayer:
    """MiniLM with only its last transformer layer trainable: the states entering that layer are
    cached once; each step runs the last layer (with the tower's own additive mask, not a private
    ``transformers`` helper), mean pooling and normalisation (all-MiniLM-L6-v2's pipeline),
    keeping the tokens PLANET's physical head attends over."""

    def __init__(self, model: Any) -> None:
        self.st = model.tower(View.TEXT).st

    @property
    def encoder(self) -> torch.nn.Module:
        return self.st[0].auto_model

    def cache(self, texts: list[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, masks = [], []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                features = self.st.preprocess(texts[start : start + batch_size])
                inputs = {
                    k: v
                    for k, v in features.items()
                    if k in ("input_ids", "attention_mask", "token_type_ids")
                }
                out = self.encoder(**inputs, output_hidden_states=True)
                hidden.append(out.hidden_states[-2])
                masks.append(features["attention_mask"].bool())
        length = max(h.shape[1] for h in hidden)
        hidden_t = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, length - h.shape[1])) for h in hidden])
        mask_t = torch.cat([torch.nn.functional.pad(m, (0, length - m.shape[1]), value=False) for m in masks])
        return hidden_t, mask_t

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> TokenOutput:
        tokens = self.encoder.encoder.layer[-1](
            hidden, attention_mask=additive_attention_mask(mask, hidden.dtype)
        )
        tokens = tokens[0] if isinstance(tokens, tuple) else tokens
        keep = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = torch.nn.functional.normalize((tokens * keep).sum(1) / keep.sum(1).clamp_min(1.0), dim=-1)
        return TokenOutput(pooled=pooled, tokens=tokens, attention_mask=mask)


def load_split(model: Any, manifest: Path, split: str) -> Split:
    """Pixels and cached text states of one split; checks the cached path reproduces the tower."""
    locations = [
        loc for loc in read_manifest(manifest, split=split) if loc.paths.get("satellite") is not None
    ]
    transform = model.image_transform(View.SATELLITE)
    pixels = torch.stack([transform(Image.open(loc.paths["satellite"])) for loc in locations])
    texts = [loc.text for loc in locations]
    text = TextBelowLastLayer(model)
    hidden, mask = text.cache(texts)
    with torch.no_grad():
        check = text.forward(
            *Split(locations, pixels, hidden, mask).text_rows(torch.arange(min(4, len(texts))))
        )
        direct = model.tower(View.TEXT).forward_tokens(texts[:4])
    if not torch.allclose(check.pooled, direct.pooled, atol=1e-4):
        raise RuntimeError(
            "cached last-layer text path does not reproduce the MiniLM tower; check the transformers version"
        )
    return Split(locations, pixels, hidden, mask)


def build_objective(model: Any, base: PlanetConfig, variant: Variant) -> PlanetObjective:
    """PLANET's objective at ``variant.lambda_phy``; a single-term variant keeps the itc edge and
    that one physical edge at weight lambda (L_itc + lambda * L_term)."""
    objective = build_planet_objective(model, base.model_copy(update={"lambda_phy": variant.lambda_phy}))
    if variant.term is not None:
        edges = (
            Edge(View.TEXT, View.SATELLITE, group="itc", name="t-s"),
            Edge(
                physical_key("text", variant.term),
                physical_key("satellite", variant.term),
                group="physical",
                name=variant.term,
            ),
        )
        objective.edges = EdgeSet(edges=edges, group_weights={"physical": variant.lambda_phy})
    return objective


def ranks_t2s(model: Any, split: Split) -> tuple[np.ndarray, dict[str, float]]:
    """0-based rank of each text's own tile among the split's tiles, and R@1/5/10 (protocol geobridge)."""
    model.eval()
    with torch.no_grad():
        text = model.text_tokens_from_tower_output(
            TextBelowLastLayer(model).forward(split.hidden, split.mask)
        ).embedding.numpy()
        images = torch.cat(
            [model.encode(View.SATELLITE, split.pixels[i : i + 64]) for i in range(0, len(split.pixels), 64)]
        ).numpy()
    model.train()
    ids = np.array([loc.id for loc in split.locations])
    lat = np.array([loc.lat for loc in split.locations])
    lon = np.array([loc.lon for loc in split.locations])
    result = evaluate(Embeddings(text, ids, lat, lon), Embeddings(images, ids, lat, lon), "geobridge")
    return np.asarray(result.per_query["rank"]), {f"R@{k}": result.metrics[f"R@{k}"] for k in KS}


def train_variant(
    base_model: Any,
    train: Split,
    base: PlanetConfig,
    variant: Variant,
    steps: int,
    batch_size: int,
    seed: int,
    every: int = 0,
    probes: dict[str, Split] | None = None,
) -> tuple[Any, dict[str, float], list[dict]]:
    """Train a copy of ``base_model``; returns it, the last step's loss terms and, when ``every``
    > 0, the recalls on ``probes`` every ``every`` steps (the learning curve)."""
    torch.manual_seed(seed)  # same physical-head init and dropout for every variant of a seed
    model = copy.deepcopy(base_model)
    model.tower(View.TEXT).requires_grad_(False)
    text = TextBelowLastLayer(model)
    text.encoder.encoder.layer[-1].requires_grad_(True)
    objective = build_objective(model, base, variant)
    optimiser = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)  # same batches for every variant
    order, cursor, last, curve = torch.randperm(len(train.locations), generator=generator), 0, {}, []
    model.train()
    for step in range(1, steps + 1):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(train.locations), generator=generator), 0
        index = order[cursor : cursor + batch_size]
        cursor += batch_size
        out = objective(
            {View.SATELLITE: train.pixels[index], View.TEXT: []},
            text_features=text.forward(*train.text_rows(index)),
        )
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        optimiser.step()
        last = {k: float(v.detach()) for k, v in out.terms.items()}
        if every and (step % every == 0 or step == steps):
            point: dict[str, Any] = {"step": step, "itc": last["itc"]}
            for name, split in (probes or {}).items():
                point[name] = ranks_t2s(model, split)[1]
            curve.append(point)
            print(
                f"  step {step}: itc {last['itc']:.3f} "
                + " ".join(f"{n} R@5 {point[n]['R@5']:.1f}" for n in probes or {}),
                flush=True,
            )
    return model, last, curve


def steps_for(capture: str, args: argparse.Namespace) -> int:
    """The training budget of one capture setting (``--capture-steps`` overrides ``--steps``)."""
    return int(dict(item.split("=") for item in args.capture_steps or []).get(capture, args.steps))


def result_path(cache: Path, kind: str, capture: str, name: str, seed: int, args: argparse.Namespace) -> Path:
    """Where one run's (or one curve's) JSON lives: keyed by everything that changes its numbers."""
    slug = "".join(c if c.isalnum() or c in "=." else "-" for c in name)
    budget = f"{args.locations}loc-{args.size}px-b{args.batch_size}-" + (
        f"{args.curve_steps}every{args.curve_every}"
        if kind == "curve"
        else f"{steps_for(capture, args)}steps"
    )
    return cache / "results" / budget / f"{kind}__{capture}__{slug}__seed{seed}.json"


def load_results(cache: Path, kind: str, args: argparse.Namespace) -> dict[str, dict[str, dict[int, dict]]]:
    """Every saved result of each capture's budget: capture -> variant -> seed -> record (ranks as an array)."""
    out: dict[str, dict[str, dict[int, dict]]] = {}
    paths = [
        p
        for c in CAPTURES
        for p in sorted(result_path(cache, kind, c, "x", 0, args).parent.glob(f"{kind}__{c}__*.json"))
    ]
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        if "ranks" in record:
            record["ranks"] = np.asarray(record["ranks"])
        out.setdefault(record["capture"], {}).setdefault(record["variant"], {})[record["seed"]] = record
    order = {name: i for i, name in enumerate(CAPTURES)}
    rank = lambda by_seed: next(iter(by_seed.values())).get("order", 0)  # noqa: E731 - the grid's order
    return {
        c: dict(sorted(out[c].items(), key=lambda item: rank(item[1]))) for c in sorted(out, key=order.get)
    }


def save_result(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path, json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in record.items()})
    )


def render(folder: Path, locations: int, size: int, variation: float) -> Path:
    """The demo's world layout, satellite view only, at one capture variation (cached in ``folder``)."""
    manifest = folder / "manifest.parquet"
    if manifest.exists():
        return manifest
    return generate_world_dataset(
        folder,
        locations=locations,
        seed=0,
        size=size,
        views=("satellite",),
        world_size_m=2000.0,
        regions=10,
        test_regions=3,
        test_region_policy="shared-style",
        text_compass=False,
        capture_variation=variation,
        workers=2,
        progress=False,
    )


# --------------------------------------------------------------------------- report
def read_sections(path: Path) -> dict[str, str]:
    """The report's ``## `` sections by heading (text up to the next one), to keep those a run does not write."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


CURVE = "Learning curve (the budget)"
RESULTS = "Results"
READING = "Reading"


def capture_section(capture: str) -> str:
    """The heading of one capture's results table: its own section, so a run that trains only
    one capture rewrites that table and keeps the other as it was measured."""
    return f"Results, views captured {capture}"


def write_markdown(out: Path, sections: dict[str, str]) -> None:
    head = """# PLANET ablation: physical-consistency terms on text -> satellite (embedded world)

PLANET's claim: adding L_phy = L_colour + L_structure + L_texture (InfoNCE between a text
descriptor and the satellite tile's colour histogram, gradient-orientation histogram and texture
spectrum) to the text-satellite InfoNCE improves text -> satellite retrieval. Written by
`benchmarks/planet_ablation.py` (its docstring has the recipe); the reading at the end is
hand-written and kept across runs.
"""
    body = [head]
    names = (CURVE, RESULTS, *(capture_section(c) for c in CAPTURES), READING)
    for name in names:
        if sections.get(name, "").strip():
            body.append(f"## {name}\n{sections[name].rstrip()}\n")
    atomic_write_text(out, "\n".join(body))


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU, 1 thread"


def machine_line(started_load: float) -> str:
    """Date, machine and the load around a run (the machine is shared: times are indicative only)."""
    return (
        f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, {machine()}, load average {started_load:.1f} at start / "
        f"{os.getloadavg()[0]:.1f} at end"
    )


def curve_section(curves: dict[str, dict[str, dict[int, dict]]], args: argparse.Namespace) -> str:
    """The baseline's recalls every ``--curve-every`` steps, per capture (from the saved curves)."""
    records = [
        r for by_variant in curves.values() for by_seed in by_variant.values() for r in by_seed.values()
    ]
    lines = [
        "",
        f"Baseline only (lambda=0), batch {args.batch_size}, recalls every {args.curve_every} steps on the val split "
        "(unseen places of training districts) and on the test split (held-out districts, where the budget is read). "
        + " ".join(
            f"{r['capture']}, seed {r['seed']}: {r['data']}; measured {r['measured']}, {r['seconds'] / 60:.0f} min."
            for r in records
        ),
        "",
        "| capture | step | itc (last batch) | val R@1 | val R@5 | val R@10 | test R@1 | test R@5 | test R@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        capture = record["capture"]
        for p in record["points"]:
            lines.append(
                f"| {capture} | {p['step']} | {p['itc']:.3f} | "
                + " | ".join(f"{p[s][f'R@{k}']:.1f}" for s in ("val", "test") for k in KS)
                + " |"
            )
    return "\n".join(lines) + "\n"


RESULTS_LEGEND = """
Cells: mean over seeds; in brackets, the variant minus lambda=0 (percentage points) and its 95% paired
bootstrap interval over test queries (each query's hit averaged over the seeds first). **Bold**: the
interval excludes 0. Last column: the seeds where the variant is above / level / below lambda=0 on R@5.
"""


def results_sections(runs: dict[str, dict[str, dict[int, dict]]], args: argparse.Namespace) -> dict[str, str]:
    """One table per capture: means over seeds, and each variant minus lambda=0 with a 95% paired
    bootstrap interval."""
    return {capture_section(c): capture_table(c, by_variant, args) for c, by_variant in runs.items()}


def capture_table(capture: str, by_variant: dict[str, dict[int, dict]], args: argparse.Namespace) -> str:
    """One capture's table and the line saying when, where and on what its runs were measured."""
    records = [r for by_seed in by_variant.values() for r in by_seed.values()]
    data = "; ".join(sorted({r["data"] for r in records}))
    ends = sorted(r["measured"].split(",")[0] for r in records)
    dates = ends[0] if ends[0] == ends[-1] else f"{ends[0]} to {ends[-1]}"
    minutes = sum(r["seconds"] for r in records) / 60
    n = records[0]["ranks"].size
    lines = [
        "",
        f"Satellite capture_variation {CAPTURES[capture]:g}, batch {args.batch_size}, {steps_for(capture, args)} steps "
        f"per run (the budget: see the learning curve); {data}; {n} test queries, chance R@1 {100 / n:.2f} / "
        f"R@5 {500 / n:.2f} / R@10 {1000 / n:.2f}. Measured {dates} ({machine()}, shared with other jobs); "
        f"{len(records)} runs, {minutes:.0f} process-minutes of training and evaluation (several runs at a time).",
        "",
        "| variant | seeds | R@1 | R@5 | R@10 | R@5 per seed: up / level / down | final itc | final phy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ref = by_variant.get(REFERENCE)
    for name, seeds in by_variant.items():
        paired = ref is not None and name != REFERENCE and set(seeds) <= set(ref)
        cells = []
        for k in KS:
            mean = float(np.mean([r["metrics"][f"R@{k}"] for r in seeds.values()]))
            cell = f"{mean:.1f}"
            if paired:
                assert ref is not None
                hits = np.mean([seeds[s]["ranks"] < k for s in seeds], axis=0)
                base = np.mean([ref[s]["ranks"] < k for s in seeds], axis=0)
                d = paired_bootstrap(hits, base)
                text = f"{d.difference:+.1f} ({d.low:+.1f}, {d.high:+.1f})"
                cell += f" [{'**' + text + '**' if d.significant else text}]"
            cells.append(cell)
        votes = ""
        if paired:
            assert ref is not None
            diff = [seeds[s]["metrics"]["R@5"] - ref[s]["metrics"]["R@5"] for s in seeds]
            votes = f"{sum(x > 0 for x in diff)} / {sum(x == 0 for x in diff)} / {sum(x < 0 for x in diff)}"
        itc = np.mean([r["terms"].get("itc", np.nan) for r in seeds.values()])
        phy = np.mean([r["terms"].get("phy", np.nan) for r in seeds.values()])
        lines.append(
            f"| {name} | {' '.join(str(s) for s in sorted(seeds))} | "
            + " | ".join(cells)
            + f" | {votes} | {itc:.3f} | {phy:.3f} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--locations", type=int, default=1000, help="places in the world (about 20%% are test)"
    )
    parser.add_argument(
        "--size", type=int, default=32, help="tile size in px (32: the budget, see the report)"
    )
    parser.add_argument("--steps", type=int, default=200, help="training steps per run (chosen from --curve)")
    parser.add_argument(
        "--capture-steps",
        nargs="*",
        metavar="CAPTURE=STEPS",
        default=["together=150", "apart=300"],
        help="per-capture budgets overriding --steps (chosen from --curve)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.5, 1.0])
    parser.add_argument(
        "--single-lambda",
        type=float,
        default=None,
        help="lambda of the one-term variants (default: configs/planet.yaml's)",
    )
    parser.add_argument(
        "--capture-variation",
        nargs="+",
        choices=sorted(CAPTURES),
        default=list(CAPTURES),
        help="satellite captured with the place's common conditions (together) or its own (apart)",
    )
    parser.add_argument("--variants", nargs="*", default=None, help="names to run (default: the whole grid)")
    parser.add_argument(
        "--curve", action="store_true", help="run the baseline's learning curve instead of the grid"
    )
    parser.add_argument("--curve-steps", type=int, default=400)
    parser.add_argument("--curve-every", type=int, default=50)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the report from the results saved in --cache; train nothing",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder for the rendered worlds (default: temporary)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: a tiny world, 2 steps, writes to a temporary file"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.locations, args.size, args.steps, args.seeds, args.batch_size, args.capture_steps = (
            80,
            24,
            2,
            [0],
            8,
            [],
        )
        args.curve_steps, args.curve_every, args.capture_variation = 2, 1, ["apart"]
        args.variants = args.variants or [REFERENCE, "lambda=0.1", "colour alone (lambda=0.1)"]
        args.out = None  # a file in the run's temporary folder, printed and removed
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(1)  # see the module docstring
    base = PlanetConfig(
        **yaml.safe_load((REPO / "configs" / "planet.yaml").read_text(encoding="utf-8"))["physical"]
    )
    single = base.lambda_phy if args.single_lambda is None else args.single_lambda
    variants = grid_variants(args.lambdas, single)
    grid_order = {v.name: i for i, v in enumerate(variants)}
    if args.variants:
        unknown = sorted(set(args.variants) - {v.name for v in variants})
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; names: {[v.name for v in variants]}")
        variants = [v for v in variants if v.name in args.variants]
    kind = "curve" if args.curve else "run"
    with tempfile.TemporaryDirectory(prefix="planet-ablation-") as tmp:
        cache = args.cache or Path(tmp)
        out: Path = args.out or Path(tmp) / "planet_ablation.md"
        for capture in args.capture_variation:
            seeds = args.seeds[:1] if args.curve else args.seeds
            todo = [
                (seed, v)
                for seed in seeds
                for v in (variants[:1] if args.curve else variants)
                if not result_path(cache, kind, capture, v.name, seed, args).exists()
            ]
            if not todo or args.report_only:
                continue
            manifest = render(
                cache / f"world-{args.locations}-{args.size}-{capture}",
                args.locations,
                args.size,
                CAPTURES[capture],
            )
            torch.manual_seed(0)
            loader = create_model("demo")
            splits = {name: load_split(loader, manifest, name) for name in ("train", "val", "test")}
            data = (
                f"world of {args.locations} places at {args.size} px, train {len(splits['train'].locations)} / val "
                f"{len(splits['val'].locations)} / test {len(splits['test'].locations)} (3 held-out districts)"
            )
            models: dict[int, Any] = {0: loader}  # seed 0's model is the loader (built under manual_seed(0))
            for seed, variant in todo:
                if seed not in models:
                    torch.manual_seed(seed)
                    models[seed] = create_model(
                        "demo"
                    )  # the random towers differ per seed; MiniLM is the same
                load, tick = os.getloadavg()[0], time.perf_counter()
                probes = {"val": splits["val"], "test": splits["test"]} if args.curve else None
                model, terms, points = train_variant(
                    models[seed],
                    splits["train"],
                    base,
                    variant,
                    args.curve_steps if args.curve else steps_for(capture, args),
                    args.batch_size,
                    seed,
                    args.curve_every if args.curve else 0,
                    probes,
                )
                record: dict[str, Any] = {
                    "capture": capture,
                    "variant": variant.name,
                    "order": grid_order[variant.name],
                    "seed": seed,
                    "terms": terms,
                    "data": data,
                }
                if args.curve:
                    record["points"] = points
                else:
                    record["ranks"], record["metrics"] = ranks_t2s(model, splits["test"])
                    print(
                        f"{capture} {variant.name} seed {seed}: "
                        + " ".join(f"{k} {v:.1f}" for k, v in record["metrics"].items())
                        + f" ({time.perf_counter() - tick:.0f} s)",
                        flush=True,
                    )
                record["seconds"], record["measured"] = time.perf_counter() - tick, machine_line(load)
                save_result(result_path(cache, kind, capture, variant.name, seed, args), record)
                write_report(out, cache, args)  # after each run: a long run keeps what it measured
        write_report(out, cache, args)
        print(out.read_text(encoding="utf-8") if args.out is None else f"wrote {out}")


def write_report(out: Path, cache: Path, args: argparse.Namespace) -> None:
    """Rebuild the curve and results sections from every saved result in ``cache``; keep the rest of ``out``."""
    sections = read_sections(out)
    curves, runs = load_results(cache, "curve", args), load_results(cache, "run", args)
    if curves:
        sections[CURVE] = curve_section(curves, args)
    if runs:
        sections[RESULTS] = RESULTS_LEGEND
        sections.update(results_sections(runs, args))
    write_markdown(out, sections)


if __name__ == "__main__":
    main()
