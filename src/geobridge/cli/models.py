"""The `geobridge models` command: the presets and the saved or converted models in a folder, with
their towers, input sizes, eval transforms and provenance (from a converted model's provenance.json).

    geobridge models                 # presets only
    geobridge models --dir models/   # plus every model directory under models/ (one level)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from geobridge.cli.errors import fail


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.command("models")(models_command)


def models_command(
    directory: Optional[Path] = typer.Option(None, "--dir", help="Also list the model directories in it."),
) -> None:
    """List model presets and local (saved or converted) models."""
    from geobridge.models.registry import list_presets, preset_config

    if directory is not None and not directory.is_dir():
        raise fail(f"--dir {directory} is not a folder")
    typer.echo("presets:")
    for name in list_presets():
        _print_model(name, preset_config(name), provenance=None, indent="  ")
    if directory is None:
        return
    typer.echo(f"local models in {directory}:")
    found = _model_dirs(directory)
    if not found:
        typer.echo("  (none: a model directory holds config.json and model.safetensors)")
    for path in found:
        _print_local(path)


def _model_dirs(directory: Path) -> list[Path]:
    from geobridge.models.model import CONFIG_NAME, WEIGHTS_NAME

    children = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    candidates = [directory] + children
    return [p for p in candidates if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()]


def _print_local(path: Path) -> None:
    from geobridge.models.config import ModelConfig
    from geobridge.models.convert import read_provenance

    try:
        config = ModelConfig.from_file(path / "config.json")
    except (ValueError, OSError) as err:
        typer.echo(f"  {path}: unreadable config ({str(err).splitlines()[0]})")
        return
    _print_model(str(path), config, read_provenance(path), indent="  ")


def _print_model(label: str, config: Any, provenance: dict[str, Any] | None, indent: str) -> None:
    text = "text" if config.text_tower else "no text"
    typer.echo(f"{indent}{label}  [{config.name}] embed {config.embed_dim}, {text}")
    for view, tower_name in config.image_towers.items():
        tower = config.towers[tower_name]
        size = config.view_image_sizes.get(view) or tower.image_size
        shown = f"{size[0]}x{size[1]}" if size else "backend default"
        pinned = config.eval_transforms.get(view)
        transform = (
            pinned.describe()
            if pinned
            else (
                f"{shown} bicubic, mean/std "
                + (
                    "backend default"
                    if tower.mean is None
                    else "(" + ", ".join(f"{v:g}" for v in tower.mean) + ")"
                )
            )
        )
        source = tower.source or (tower.arch or {}).get("model_type", "from config")
        typer.echo(f"{indent}  {view.value}: tower {tower_name} ({tower.backend} {source}); eval {transform}")
    if config.text_tower:
        tower = config.towers[config.text_tower]
        source = tower.source or "from config"
        typer.echo(f"{indent}  text: tower {config.text_tower} ({tower.backend} {source})")
    if provenance:
        typer.echo(
            f"{indent}  provenance: {provenance.get('format')} from {provenance.get('checkpoint')} "
            f"(sha256 {str(provenance.get('sha256'))[:12]}...), licence: {provenance.get('licence')}, "
            f"published: {provenance.get('published') or 'none'}"
        )
