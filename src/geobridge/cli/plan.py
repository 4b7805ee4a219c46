"""The ``geobridge plan`` command: what a recipe costs before renting GPUs.

    geobridge plan --config geobridge-clip-l14 --json plan.json
    geobridge plan --config sample4geo-convnext --gpus 2 data.batch_size=256

Parameters and trainable parameters per tower, forward GFLOPs per sample per view, and the
estimated peak GPU memory of one training step (fp32 / bf16, plain / gradient cache), from the
architecture alone on the meta device: no weight is downloaded. How the estimate is made:
:mod:`geobridge.train.plan` and docs/plan.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from geobridge.cli.errors import fail

GIB = 1024**3


def register(app: typer.Typer) -> None:
    """Add this job's command to the `geobridge` app."""
    app.command("plan")(plan_command)


def plan_command(
    overrides: Optional[list[str]] = typer.Argument(
        None, help="key=value overrides, e.g. data.batch_size=64"
    ),
    config: str = typer.Option(
        ..., "--config", "-c", help="A shipped recipe by name or a YAML training config."
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the plan as JSON to this file."),
    gpus: int = typer.Option(1, "--gpus", min=1, help="GPUs sharing data.batch_size (the global batch)."),
    micro_batch: Optional[int] = typer.Option(
        None, "--micro-batch", min=1, help="Gradient-cache micro-batch when the recipe sets none (default 8)."
    ),
) -> None:
    """Parameters, GFLOPs and estimated peak GPU memory of a recipe's training step, without weights."""
    from geobridge.configs import resolve_config
    from geobridge.models.towers.base import TowerLoadError
    from geobridge.train.config import ConfigError, TrainConfig
    from geobridge.train.plan import plan_training

    try:
        cfg = TrainConfig.load(resolve_config(config), list(overrides or []))
        plan = plan_training(cfg, gpus=gpus, micro_batch=micro_batch)
    except (ConfigError, FileNotFoundError, ValueError, KeyError, TowerLoadError) as err:
        raise fail(str(err).strip("'\"")) from None
    typer.echo(render(plan))
    if json_out is not None:
        from geobridge.atomic import atomic_write_text

        atomic_write_text(json_out, json.dumps(plan, indent=2) + "\n")
        typer.echo(f"wrote {json_out}")


def render(plan: dict[str, Any]) -> str:
    """The plan as a short text table."""
    lines = [
        f"{plan['recipe']}: views {', '.join(plan['views'])}; batch {plan['per_gpu_batch']} per GPU "
        f"({plan['global_batch']} over {plan['gpus']}), "
        f"gradient-cache micro-batch {plan['micro_batch']}",
        f"{'tower':<12} {'params':>10} {'trainable':>10}  GFLOPs/sample (forward)",
    ]
    for name, tower in plan["towers"].items():
        flops = ", ".join(f"{view} {value:.1f}" for view, value in tower["gflops_per_sample"].items())
        lines.append(
            f"{name:<12} {tower['parameters'] / 1e6:>9.1f}M "
            f"{tower['trainable_parameters'] / 1e6:>9.1f}M  {flops}"
        )
    lines.append(
        f"{'total':<12} {plan['parameters'] / 1e6:>9.1f}M {plan['trainable_parameters'] / 1e6:>9.1f}M"
    )
    lines.append("estimated peak memory of one step (GiB):  plain  grad-cache")
    for precision, row in plan["peak_memory_bytes"].items():
        lines.append(f"  {precision:<38} {row['plain'] / GIB:>6.1f}  {row['grad_cache'] / GIB:>10.1f}")
    lines.append(f"not counted: {plan['not_counted']}")
    return "\n".join(lines)
