"""Commands of the `demo` job: ``geobridge demo --out demo`` (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail
from geobridge.cli.run_options import checked_device, device_option


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""

    @app.command("demo")
    def demo_command(
        overrides: Optional[list[str]] = typer.Argument(
            None, help="key=value overrides of the training config, e.g. optim.epochs=2"
        ),
        out: Path = typer.Option(Path("demo"), "--out", help="Folder for everything the demo makes."),
        config: Optional[str] = typer.Option(
            None, "--config", help="Training recipe: a YAML path or a shipped recipe name (default: demo)."
        ),
        locations: Optional[int] = typer.Option(
            None, "--locations", min=20, help="Locations to render, train/val/test together (default: 1500)."
        ),
        size: int = typer.Option(64, "--size", min=16, help="Rendered image size in pixels."),
        seed: int = typer.Option(0, "--seed"),
        variants: str = typer.Option(
            "image-only,text-only,geobridge",
            "--variants",
            help="Ablation rows to train (must include geobridge).",
        ),
        reuse_world: bool = typer.Option(
            False, "--reuse-world", help="Keep OUT/world if it is already rendered."
        ),
        device: str = device_option(),
    ) -> None:
        """Render the embedded world, train GeoBridge and its ablation on CPU, evaluate, report."""
        from dataclasses import replace

        from geobridge.demo import DEMO_WORLD, run_demo
        from geobridge.train.config import ConfigError

        chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
        world = replace(DEMO_WORLD, size=size, seed=seed)
        if locations:
            world = replace(world, locations=locations)
        try:
            run_demo(
                out,
                config_path=config,
                overrides=list(overrides or []),
                world=world,
                variants=chosen,
                reuse_world=reuse_world,
                echo=typer.echo,
                device=checked_device(device),
            )
        except (ConfigError, ValueError, FileNotFoundError) as err:
            raise fail(str(err)) from None
