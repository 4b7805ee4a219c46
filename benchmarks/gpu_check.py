"""GPU check: run it on a CUDA machine, unattended, in under 8 minutes; it writes gpu_check.md.

1. the suite's device tests on CUDA: tests/test_device_contract.py, and the full-size recipes
   trained two steps at batch 2 in bf16 (tests/test_train_full_size.py with
   GEOBRIDGE_TEST_DEVICE=cuda);
2. for geobridge-clip-l14 and sample4geo-convnext (random init): training images/s and peak
   memory at the papers' per-GPU batch (GeoBridge: 32 over 8 GPUs = 4 locations x 3 image views
   + text; Sample4Geo: 128 pairs with gradient caching in micro-batches of 32) in bf16, beside
   ``geobridge plan``'s estimate; DDP over all visible GPUs when there are several (the per-GPU
   batch stays the same);
3. embedding throughput of the engine (``encode_images`` on PNG files) against the model's
   forward alone on pre-decoded tensors (the floor), geobridge-clip-l14's drone tower;
4. exact retrieval at 100k queries x 100k gallery x 768 on the GPU (bf16 GEMM in chunks + top-10
   per query) against the GEMM alone (its floor).

Without CUDA it says so and exits 0.

    python benchmarks/gpu_check.py [--out benchmarks/gpu_check.md] [--skip-tests]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3
TRAIN = {  # recipe -> (per-GPU batch, overrides): the papers' per-GPU settings
    "geobridge-clip-l14": (4, ["data.batch_size=4"]),
    "sample4geo-convnext": (128, ["data.batch_size=128"]),
}


def run_tests() -> tuple[str, float]:
    """The device tests on CUDA; returns pytest's summary line and the seconds it took."""
    env = {**os.environ, "GEOBRIDGE_TEST_DEVICE": "cuda", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_device_contract.py",
            "tests/test_train_full_size.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    return (lines[-1] if lines else f"pytest exited {run.returncode}"), time.perf_counter() - started


def synthetic_batch(model: Any, views: list[Any], batch: int, device: torch.device) -> dict[Any, Any]:
    """A training batch of random pixels (and short texts) at the model's view sizes."""
    from geobridge.views import View

    out: dict[Any, Any] = {"index": torch.arange(batch), "mask": {}}
    for view in views:
        if view is View.TEXT:
            out[view] = [f"a bridge over the river north of the park {i}" for i in range(batch)]
        else:
            height, width = model.config.image_size(view)
            out[view] = torch.randn(batch, 3, int(height), int(width), device=device)
        out["mask"][view] = torch.ones(batch, dtype=torch.bool)
    return out


def train_speed(recipe: str, rank: int = 0, world: int = 1, steps: int = 6) -> dict[str, float]:
    """Images/s and peak memory of bf16 training steps at the recipe's per-GPU batch (random init)."""
    from geobridge.configs import resolve_config
    from geobridge.train.batches import encode_views, masks_on
    from geobridge.train.config import TrainConfig
    from geobridge.train.engine import apply_freezing, build_loss, build_model, training_views
    from geobridge.train.gradcache import grad_cache_step

    batch, overrides = TRAIN[recipe]
    config = TrainConfig.load(resolve_config(recipe), overrides + ["model.init=random"])
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    model = build_model(config)
    apply_freezing(model, config)
    model.to(device)
    views = training_views(config, model)
    net: Any = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
    loss_fn = build_loss(config, distributed=world > 1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    data = synthetic_batch(model, views, batch, device)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    micro = config.optim.grad_cache_micro_batch
    torch.cuda.reset_peak_memory_stats(device)
    timings = []
    for _ in range(steps):
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if micro:
            grad_cache_step(model, data, views, loss_fn, micro, device, autocast=autocast)
        else:
            with autocast():
                out = loss_fn(
                    encode_views(net.module if world > 1 else net, data, views, device),
                    model.logit_scale_value(),
                    masks_on(data, views, device),
                )
            out.total.backward()
        optimizer.step()
        torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
    seconds = sorted(timings[2:])[len(timings[2:]) // 2]  # median after two warm-up steps
    images = batch * sum(1 for v in views if v.is_image) * world
    return {
        "images_per_s": images / seconds,
        "step_s": seconds,
        "peak_gib": torch.cuda.max_memory_allocated(device) / GIB,
    }


def _ddp_worker(rank: int, world: int, recipe: str, results: Any) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT="29533",
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.distributed.init_process_group("nccl", rank=rank, world_size=world)
    try:
        result = train_speed(recipe, rank, world)
        if rank == 0:
            results.put(result)
    finally:
        torch.distributed.destroy_process_group()


def train_row(recipe: str) -> dict[str, float]:
    """``train_speed`` on one GPU, or under DDP over every visible GPU."""
    world = torch.cuda.device_count()
    if world == 1:
        return train_speed(recipe)
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(world, recipe, results), nprocs=world, start_method="spawn")
    return results.get()


def planned_peak(recipe: str, batch: int) -> float:
    from geobridge.configs import resolve_config
    from geobridge.train.config import TrainConfig
    from geobridge.train.plan import plan_training

    plan = plan_training(TrainConfig.load(resolve_config(recipe), [f"data.batch_size={batch}"]))
    cached = plan["micro_batch"] < plan["per_gpu_batch"] and recipe.startswith("sample4geo")
    strategy = "grad_cache" if cached else "plain"
    return plan["peak_memory_bytes"]["bf16"][strategy] / GIB


def embed_speed(tiles: int = 4096) -> dict[str, float]:
    """Engine end to end on PNG files vs the forward on pre-decoded tensors (clip-l14's drone tower)."""
    import numpy as np
    from PIL import Image

    from geobridge.models import create_model
    from geobridge.models.embedder import EmbedOptions, encode_images

    model = create_model("geobridge-clip-l14", init="random", views=["drone"]).to("cuda").eval()
    folder = Path(tempfile.mkdtemp(prefix="gpu_check_tiles_"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(256):  # 256 distinct files, listed repeatedly: decoding work is the same per file
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    files = [paths[i % len(paths)] for i in range(tiles)]
    options = EmbedOptions(batch_size=128, precision="bf16", progress=False)
    encode_images(model, files[:512], "drone", options)  # warm-up
    torch.cuda.synchronize()
    started = time.perf_counter()
    encode_images(model, files, "drone", options)
    engine = tiles / (time.perf_counter() - started)
    pixels = torch.randn(128, 3, 224, 224, device="cuda")
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        model.encode("drone", pixels)
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(tiles // 128):
            model.encode("drone", pixels)
        torch.cuda.synchronize()
    floor = (tiles // 128) * 128 / (time.perf_counter() - started)
    return {"engine": engine, "floor": floor}


def exact_search(n: int = 100_000, dim: int = 768, k: int = 10, chunk: int = 8192) -> dict[str, float]:
    """Exact top-k of n x n x dim in bf16 on the GPU vs the GEMM alone."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    normalize = torch.nn.functional.normalize
    queries = normalize(torch.randn(n, dim, device="cuda", generator=gen), dim=1).bfloat16()
    gallery = normalize(torch.randn(n, dim, device="cuda", generator=gen), dim=1).bfloat16()

    def run(with_topk: bool) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        for start in range(0, n, chunk):
            scores = queries[start : start + chunk] @ gallery.T
            if with_topk:
                torch.topk(scores.float(), k, dim=1)
        torch.cuda.synchronize()
        return time.perf_counter() - started

    run(True)  # warm-up
    gemm, search = run(False), run(True)
    return {"search_s": search, "gemm_s": gemm, "tflops": 2 * n * n * dim / gemm / 1e12}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu_check.md")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: only a 4,096 x 4,096 exact search, table to a temporary file (no device tests, no training)",
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to check")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0)
    lines = [
        f"# GPU check: {gpus} x {name}",
        "",
        f"Run {dt.date.today()}, torch {torch.__version__}, `python benchmarks/gpu_check.py`.",
        "",
    ]
    if args.smoke:
        search = exact_search(n=4096)
        out = Path(tempfile.mkdtemp()) / "gpu_check.md"
        out.write_text(
            f"smoke: exact search 4096 x 4096 x 768 in {search['search_s']:.3f} s\n", encoding="utf-8"
        )
        print(f"wrote {out}")
        return 0
    if not args.skip_tests:
        summary, seconds = run_tests()
        lines += [f"Device tests on CUDA: {summary} ({seconds:.0f} s)", ""]
        print(lines[-2], flush=True)
    lines += [
        "| Recipe (random init, bf16) | per-GPU batch | images/s | step (s) | peak GiB | plan GiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for recipe, (batch, _) in TRAIN.items():
        row = train_row(recipe)
        lines.append(
            f"| {recipe} x{gpus} | {batch} | {row['images_per_s']:.0f} | {row['step_s']:.2f} | "
            f"{row['peak_gib']:.1f} | {planned_peak(recipe, batch):.1f} |"
        )
        print(lines[-1], flush=True)
        torch.cuda.empty_cache()
    embed = embed_speed()
    lines += [
        "",
        "| Embedding (clip-l14 drone tower, bf16, batch 128) | images/s |",
        "|---|---:|",
        f"| engine on PNG files | {embed['engine']:.0f} |",
        f"| forward on pre-decoded tensors (floor) | {embed['floor']:.0f} |",
        f"| ratio floor/engine | {embed['floor'] / embed['engine']:.2f}x |",
    ]
    print("\n".join(lines[-5:]), flush=True)
    search = exact_search()
    lines += [
        "",
        "| Exact search 100k x 100k x 768 (bf16) | seconds |",
        "|---|---:|",
        f"| GEMM + top-10 | {search['search_s']:.2f} |",
        f"| GEMM alone (floor, {search['tflops']:.0f} TFLOP/s) | {search['gemm_s']:.2f} |",
    ]
    lines += ["", f"Total {time.perf_counter() - started:.0f} s.", ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[-6:]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
