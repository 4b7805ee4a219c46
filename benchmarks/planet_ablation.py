"""PLANET ablation on the embedded world: text -> satellite R@1/5/10 for lambda in {0, 0.1, 0.5}
(and one coarser-bins variant), same data, same initial weights, same batches, same step budget.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 python benchmarks/planet_ablation.py [--steps 120] [--seeds 0]

Recipe (configs/planet.yaml, shortened): `demo` preset (tiny CNN satellite tower from random
weights + offline pretrained MiniLM text tower with only its last layer trainable, the states
entering that layer cached once), Adam at 1e-3 on the satellite tower, the last MiniLM layer,
both projections, the logit scale and the physical head. A fully frozen text tower would make
every lambda give the same retrieval model: L_phy reaches the embedding only through trainable
text layers (the image signatures carry no gradient). lambda=0
is the plain text-satellite InfoNCE baseline (the named reference of the ratio column).
Evaluation: exact cosine ranking of the held-out test split (a region never trained on),
`geobridge.evaluation.protocols.evaluate(..., "geobridge")`. Writes benchmarks/planet_ablation.md.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from tqdm.auto import tqdm

from geobridge.atomic import atomic_write_text
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import evaluate
from geobridge.losses.planet import PlanetConfig, build_planet_objective
from geobridge.models import create_model
from geobridge.models.towers.base import TokenOutput
from geobridge.records import Location, read_manifest
from geobridge.views import View
from geobridge.world.dataset import generate_world_dataset

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_suffix(".md")


@dataclass
class Variant:
    name: str
    physical: PlanetConfig


@dataclass
class Split:
    """A split held in memory: satellite pixels and cached frozen-text tower outputs."""

    locations: list[Location]
    pixels: torch.Tensor
    hidden: torch.Tensor  # text states entering MiniLM's last layer (N, L, 384)
    mask: torch.Tensor  # (N, L) bool, True on real tokens

    def text_rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.mask[index]
        length = int(mask.sum(1).max())  # trim to the longest text in this batch
        return self.hidden[index, :length], mask[:, :length]


class TextBelowLastLayer:
    """MiniLM with only its last transformer layer trainable: the hidden states entering that
    layer are cached once; each step runs the last layer, mean pooling and normalisation (the
    sentence-transformers pipeline of all-MiniLM-L6-v2). L_phy can only reach the retrieval
    embedding through trainable text layers, so the text tower cannot be frozen entirely."""

    def __init__(self, model) -> None:
        self.st = model.tower(View.TEXT).st

    @property
    def encoder(self):
        return self.st[0].auto_model

    def cache(self, texts: list[str], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, masks = [], []
        with torch.no_grad():
            for start in tqdm(range(0, len(texts), batch_size), desc="text states", leave=False):
                features = self.st.preprocess(texts[start : start + batch_size])
                inputs = {k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                out = self.encoder(**inputs, output_hidden_states=True)
                hidden.append(out.hidden_states[-2])
                masks.append(features["attention_mask"].bool())
        length = max(h.shape[1] for h in hidden)
        hidden = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, length - h.shape[1])) for h in hidden])
        masks = torch.cat([torch.nn.functional.pad(m, (0, length - m.shape[1]), value=False) for m in masks])
        return hidden, masks

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> TokenOutput:
        extended, _ = self.encoder._create_attention_masks(
            attention_mask=mask.long(), encoder_attention_mask=None, embedding_output=hidden,
            encoder_hidden_states=None, past_key_values=None,
        )
        tokens = self.encoder.encoder.layer[-1](hidden, attention_mask=extended)
        tokens = tokens[0] if isinstance(tokens, tuple) else tokens
        keep = mask.unsqueeze(-1).to(tokens.dtype)
        pooled = torch.nn.functional.normalize((tokens * keep).sum(1) / keep.sum(1).clamp_min(1.0), dim=-1)
        return TokenOutput(pooled=pooled, tokens=tokens, attention_mask=mask)


def load_split(model, manifest: Path, split: str) -> Split:
    locations = [loc for loc in read_manifest(manifest, split=split) if loc.paths.get("satellite") is not None]
    transform = model.image_transform(View.SATELLITE)
    pixels = torch.stack([transform(Image.open(loc.paths["satellite"])) for loc in locations])
    texts = [loc.text for loc in locations]
    text = TextBelowLastLayer(model)
    hidden, mask = text.cache(texts)
    with torch.no_grad():  # the cached path must reproduce the tower exactly
        check = text.forward(*Split(locations, pixels, hidden, mask).text_rows(torch.arange(min(4, len(texts)))))
        direct = model.tower(View.TEXT).forward_tokens(texts[:4])
    if not torch.allclose(check.pooled, direct.pooled, atol=1e-4):
        raise RuntimeError("cached last-layer text path does not reproduce the MiniLM tower; check the transformers version")
    return Split(locations, pixels, hidden, mask)


def train_variant(base_model, train: Split, variant: Variant, steps: int, batch_size: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = copy.deepcopy(base_model)
    model.tower(View.TEXT).requires_grad_(False)
    text = TextBelowLastLayer(model)
    text.encoder.encoder.layer[-1].requires_grad_(True)  # the last MiniLM layer trains
    objective = build_planet_objective(model, variant.physical)
    parameters = [p for p in objective.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(parameters, lr=1e-3)
    generator = torch.Generator().manual_seed(seed)  # same batches for every variant
    order = torch.randperm(len(train.locations), generator=generator)
    cursor, last = 0, {}
    model.train()
    for _ in tqdm(range(steps), desc=f"train {variant.name} seed {seed}", leave=False):
        if cursor + batch_size > len(order):
            order, cursor = torch.randperm(len(train.locations), generator=generator), 0
        index = order[cursor : cursor + batch_size]
        cursor += batch_size
        out = objective({View.SATELLITE: train.pixels[index], View.TEXT: []}, text_features=text.forward(*train.text_rows(index)))
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        optimiser.step()
        last = {k: float(v.detach()) for k, v in out.terms.items()}
    return {"model": model, "final_terms": last}


def evaluate_t2s(model, test: Split) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        text = model.text_tokens_from_tower_output(TextBelowLastLayer(model).forward(test.hidden, test.mask)).embedding.numpy()
        images = torch.cat([model.encode(View.SATELLITE, test.pixels[i : i + 64]) for i in range(0, len(test.pixels), 64)]).numpy()
    ids = np.array([loc.id for loc in test.locations])
    lat = np.array([loc.lat for loc in test.locations])
    lon = np.array([loc.lon for loc in test.locations])
    result = evaluate(Embeddings(text, ids, lat, lon), Embeddings(images, ids, lat, lon), "geobridge")
    return {k: result.metrics[k] for k in ("R@1", "R@5", "R@10")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--no-bins-variant", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    load_start = os.getloadavg()
    started = time.perf_counter()

    data = yaml.safe_load((REPO / "configs" / "planet.yaml").read_text(encoding="utf-8"))
    base = PlanetConfig(**data["physical"])
    variants = [Variant(f"lambda={lam:g}", base.model_copy(update={"lambda_phy": lam})) for lam in (0.0, 0.1, 0.5)]
    if not args.no_bins_variant:
        coarse = base.model_copy(update={"lambda_phy": 0.1, "color_bins": 8, "orientation_bins": 9, "texture_rings": 8})
        variants.append(Variant("lambda=0.1, coarse bins (8/9/8)", coarse))

    with tempfile.TemporaryDirectory(prefix="planet-ablation-") as tmp:
        manifest = generate_world_dataset(Path(tmp) / "world", locations=args.locations, seed=0, size=args.size,
                                          views=("satellite",), progress=True)
        random.seed(0)
        torch.manual_seed(0)
        base_model = create_model("demo")
        train, test = load_split(base_model, manifest, "train"), load_split(base_model, manifest, "test")
    setup_s = time.perf_counter() - started

    rows = []
    for variant in variants:
        for seed in args.seeds:
            t0 = time.perf_counter()
            run = train_variant(base_model, train, variant, args.steps, args.batch_size, seed)
            metrics = evaluate_t2s(run["model"], test)
            rows.append({"variant": variant.name, "seed": seed, **metrics, "terms": run["final_terms"],
                         "seconds": time.perf_counter() - t0})
            print(f"{variant.name} seed {seed}: {metrics} ({rows[-1]['seconds']:.0f} s)")
    write_table(args, rows, len(train.locations), len(test.locations), setup_s, load_start, os.getloadavg(),
                time.perf_counter() - started)


def _mean(rows: list[dict], variant: str, key: str) -> float:
    return float(np.mean([r[key] for r in rows if r["variant"] == variant]))


def write_table(args, rows, n_train, n_test, setup_s, load_start, load_end, total_s) -> None:
    reference = "lambda=0"
    lines = [
        "# PLANET ablation: physical-consistency weight and bins (text -> satellite, embedded world)",
        "",
        f"- Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}, torch {torch.__version__}, CPU only.",
        f"- Load average at start / end: {load_start[0]:.1f} / {load_end[0]:.1f} (the machine was shared with other "
        "engineers' jobs; timings are indicative only).",
        f"- Data: procedural world, seed 0, {args.locations} locations at {args.size} px; train split {n_train} "
        f"locations, held-out test split {n_test} (a region never trained on). Queries = test texts, gallery = test "
        "satellite tiles (one positive each, exact cosine ranking, protocol `geobridge`).",
        f"- Training: `demo` preset (tiny CNN satellite tower from random init, offline MiniLM text tower with only its last "
        f"layer trainable, states below it cached), Adam lr 1e-3, batch {args.batch_size}, {args.steps} steps, seeds {args.seeds}; every variant "
        "starts from the same weights and sees the same batches. lambda=0 is the plain text-satellite InfoNCE "
        "baseline (the reference of the ratio column). Physical head: configs/planet.yaml.",
        f"- Wall time: setup (world + caching) {setup_s:.0f} s, whole run {total_s:.0f} s.",
        "",
        "| variant | seed | R@1 | R@5 | R@10 | R@1 / R@1(lambda=0) | final itc | final phy | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = [x for x in rows if x["variant"] == reference and x["seed"] == r["seed"]]
        ratio = f"{r['R@1'] / ref[0]['R@1']:.2f}" if ref and ref[0]["R@1"] > 0 else "n/a"
        lines.append(f"| {r['variant']} | {r['seed']} | {r['R@1']:.1f} | {r['R@5']:.1f} | {r['R@10']:.1f} | {ratio} | "
                     f"{r['terms'].get('itc', float('nan')):.3f} | {r['terms'].get('phy', float('nan')):.3f} | {r['seconds']:.0f} |")
    if len(args.seeds) > 1:
        lines += ["", "Means over seeds:", "", "| variant | R@1 | R@5 | R@10 |", "|---|---|---|---|"]
        for variant in dict.fromkeys(r["variant"] for r in rows):
            lines.append(f"| {variant} | {_mean(rows, variant, 'R@1'):.1f} | {_mean(rows, variant, 'R@5'):.1f} | {_mean(rows, variant, 'R@10'):.1f} |")
    lines += ["", "## Reading", ""]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    base_r1 = _mean(rows, reference, "R@1")
    for variant in variants[1:]:
        delta = _mean(rows, variant, "R@1") - base_r1
        lines.append(f"- {variant}: R@1 {delta:+.1f} points against lambda=0 (mean over seeds).")
    lines += [
        f"- Resolution: one test query is {100.0 / n_test:.1f} points of recall; differences of one or two queries "
        "are within the seed-to-seed noise of such a small run and are not evidence either way.",
        "",
    ]
    atomic_write_text(OUT, "\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
