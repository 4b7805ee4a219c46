"""Share of a training step spent in the loss (and its all-gather) for the tiny model.

Reference: one full training step of the `tiny` preset at a global batch of 64 locations
(drone 64x64, street 64x128, satellite 64x64, text): encode every view, GeoBridge edge-set loss,
backward, AdamW step. Measured part: the loss forward + its backward down to the embeddings
(on detached copies of the same embeddings), including the all-gather when 2 processes run.

    python benchmarks/loss_overhead.py [--steps 10] [--out benchmarks/loss_overhead.md]

Runs one process (batch 64) and two gloo processes (32 each, global 64, on this CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geobridge.losses import edge_set
from geobridge.models import ModelConfig, create_model, preset_config
from geobridge.views import View

GLOBAL_BATCH = 64
VIEWS = {View.DRONE: (64, 64), View.STREET: (64, 128), View.SATELLITE: (64, 64)}


def _batch(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch: dict = {v: torch.randn(n, 3, h, w, generator=g) for v, (h, w) in VIEWS.items()}
    words = ["river", "bridge", "park", "road", "church", "lake", "tower", "square", "north", "east"]
    batch[View.TEXT] = [" ".join(words[(i * k) % len(words)] for k in range(1, 9)) for i in range(n)]
    return batch


def _allreduce_grads(model: torch.nn.Module, world: int) -> None:
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def measure(batch_size: int, steps: int, world: int = 1, rank: int = 0) -> dict[str, float]:
    """Median seconds of a full step and of loss(+gather) forward+backward, on this rank."""
    torch.manual_seed(0)
    tiny = preset_config("tiny").model_dump()  # the tiny preset without its map tower:
    tiny["towers"].pop("map")  # the batch has no map images
    tiny["image_towers"].pop(View.MAP)
    model = create_model(ModelConfig.model_validate(tiny)).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = edge_set("geobridge", gather=world > 1)
    batch = _batch(batch_size, seed=rank)
    step_times, loss_times = [], []
    for i in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        z = model(batch)
        out = loss_fn(z, model.logit_scale_value())
        optimiser.zero_grad(set_to_none=True)
        out.total.backward()
        if world > 1:
            _allreduce_grads(model, world)
        optimiser.step()
        t1 = time.perf_counter()
        leaves = {v: e.detach().requires_grad_() for v, e in z.items()}
        scale = model.logit_scale_value().detach().requires_grad_()
        if world > 1:
            dist.barrier()
        t2 = time.perf_counter()
        loss_fn(leaves, scale).total.backward()
        t3 = time.perf_counter()
        if i >= 2:
            step_times.append(t1 - t0)
            loss_times.append(t3 - t2)
    return {"step": statistics.median(step_times), "loss": statistics.median(loss_times)}


def _worker(rank: int, world: int, init: str, steps: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        result = measure(GLOBAL_BATCH // world, steps, world=world, rank=rank)
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: 1 step, writes no file (the two gloo processes still run)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.out = 1, None

    rows = []
    single = measure(GLOBAL_BATCH, args.steps)
    rows.append(("1 process, batch 64", torch.get_num_threads(), single))
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(
            _worker, args=(2, f"{tmp}/init", args.steps, tmp), nprocs=2, join=True, start_method="spawn"
        )
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(2)]
    two = {k: max(r[k] for r in ranks) for k in ("step", "loss")}
    rows.append(("2 gloo processes, 32 each (global 64), all-gather", 1, two))

    load = os.getloadavg()
    lines = [
        "# Loss + gathering overhead (tiny preset, global batch 64)",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {platform.python_version()}",
        f"- date: {dt.datetime.now().isoformat(timespec='minutes')}",
        f"- load average while running: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (machine shared with other engineers' jobs)",
        f"- median of {args.steps} steps after 2 warm-up steps; command: `python benchmarks/loss_overhead.py`",
        "- reference: the full training step (encode drone+street+satellite+text, loss, backward, AdamW);",
        "  measured: GeoBridge edge-set loss forward + backward to the embeddings (+ all-gather with 2 processes)",
        "",
        "| setting | threads/process | training step (ms) | loss + gather (ms) | share of step | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, threads, r in rows:
        share = r["loss"] / r["step"]
        lines.append(
            f"| {name} | {threads} | {r['step'] * 1e3:.1f} | {r['loss'] * 1e3:.2f} | {share:.2%} | < 5% {'ok' if share < 0.05 else 'MISSED'} |"
        )
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
