"""Peak memory of one training step: gradient caching at a large effective batch vs a plain
micro-batch (issue 3: at effective batch 512 the peak must stay within 1.3x of micro-batch 32).

Each configuration runs in its own process; the figure is the growth of the process's peak
resident memory (VmHWM) during one step, above the resident memory after the model, the
optimizer and the input batch exist (so it counts activations, embeddings and gradients).
The input pixels of the big batch are reported separately: they are the same for any method
that trains on that batch.

    .venv/bin/python benchmarks/gradcache_memory.py [--model tiny] [--size 64] [--out benchmarks/gradcache_memory.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CASES = (
    ("plain, batch 32", 32, None),
    ("grad cache, batch 512 (micro 32)", 512, 32),
    ("plain, batch 512 (reference: no caching)", 512, None),
)


def measure(model_name: str, batch: int, micro: int | None, size: int) -> dict:
    """Run one step in this process and return the memory figures (MiB)."""
    import time

    import torch

    from geobridge.losses import edge_set
    from geobridge.models import create_model
    from geobridge.train.batches import encode_views, masks_on
    from geobridge.train.gradcache import grad_cache_step
    from geobridge.views import View

    def status(key: str) -> float:
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(key)) / 1024

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = create_model(model_name)
    views = [View.DRONE, View.STREET, View.SATELLITE, View.TEXT]
    loss_fn = edge_set("geobridge")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    device = torch.device("cpu")
    before_inputs = status("VmRSS:")
    batch_data = {
        "index": torch.arange(batch),
        View.DRONE: torch.randn(batch, 3, size, size),
        View.STREET: torch.randn(batch, 3, size, 2 * size),
        View.SATELLITE: torch.randn(batch, 3, size, size),
        View.TEXT: [f"a residential street with {i % 7} red roofs near the river" for i in range(batch)],
        "mask": {v: torch.ones(batch, dtype=torch.bool) for v in views},
    }
    baseline = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak (VmHWM) to the current resident size
    start = time.perf_counter()
    if micro is None:
        out = loss_fn(
            encode_views(model, batch_data, views, device),
            model.logit_scale_value(),
            masks_on(batch_data, views, device),
        )
        out.total.backward()
        loss = float(out.total.detach())
    else:
        loss = float(grad_cache_step(model, batch_data, views, loss_fn, micro, device).total)
    optimizer.step()
    seconds = time.perf_counter() - start
    peak = status("VmHWM:")
    return {
        "inputs_mb": baseline - before_inputs,
        "step_peak_mb": peak - baseline,
        "seconds": seconds,
        "loss": loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case as JSON
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 16 px images, batches 8 / 16 (micro 8), writes no file"
    )
    args = parser.parse_args()
    cases = CASES
    if args.smoke:
        args.size, args.out = 16, None
        cases = (("plain, batch 8", 8, None), ("grad cache, batch 16 (micro 8)", 16, 8))
    if args.one:
        batch, micro = json.loads(args.one)
        print(json.dumps(measure(args.model, batch, micro, args.size)))
        return
    rows = []
    for label, batch, micro in cases:
        output = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--model",
                    args.model,
                    "--size",
                    str(args.size),
                    "--one",
                    json.dumps([batch, micro]),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        rows.append((label, batch, micro, json.loads(output)))
        print(label, rows[-1][3], flush=True)
    reference = rows[0][3]["step_peak_mb"]
    load = os.getloadavg()
    lines = [
        "# Gradient caching: peak memory of one step",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, CPU only; "
        f"date {dt.date.today().isoformat()}; load average at the end {load[0]:.1f} (shared machine: times are "
        "indicative, memory is not affected by load).",
        f"Model: `{args.model}` preset (drone, street, satellite and text towers), images {args.size} px "
        f"(street {args.size}x{2 * args.size}), loss `geobridge` edge set, AdamW. Script: `benchmarks/gradcache_memory.py`.",
        "",
        "Peak = growth of the process's peak resident memory during one step (forward, loss, backward, "
        "optimizer step) above the memory held once the model, optimizer and input batch exist. "
        "Ratio = against the plain micro-batch of 32 measured in the same run.",
        "",
        "| case | batch | step peak (MiB) | ratio vs plain 32 | input pixels (MiB) | step time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for label, batch, _micro, r in rows:
        lines.append(
            f"| {label} | {batch} | {r['step_peak_mb']:.1f} | {r['step_peak_mb'] / reference:.2f}x | "
            f"{r['inputs_mb']:.1f} | {r['seconds']:.2f} |"
        )
    lines += ["", "Target (issue 3): grad cache at 512 within 1.3x of plain 32."]
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
