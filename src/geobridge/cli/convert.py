"""The `geobridge convert` commands: released checkpoints -> geobridge model directories.

    geobridge convert geobridge-official GeoBridge.pth models/geobridge --tokenizer clip-l14-tokenizer/
    geobridge convert sample4geo weights_e1_0.9515.pth models/s4g-u1652 \
        --arch convnext_base.fb_in22k_ft_in1k_384 --img-size 384 --published sample4geo-u1652
    geobridge convert sample4geo cvusa.pth models/s4g-cvusa --img-size 384 --street-size 140x768

No code from a checkpoint runs: pickles are read by a restricted unpickler (tensors only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail

_LICENCE_HELP = "Licence as stated by the checkpoint's authors, recorded in README.md (default: not stated)."


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    convert_app = typer.Typer(
        no_args_is_help=True,
        help="Convert a released checkpoint into a geobridge model directory (no code runs).",
    )
    app.add_typer(convert_app, name="convert")

    @convert_app.command("geobridge-official")
    def geobridge_command(
        checkpoint: Path = typer.Argument(..., help="GeoBridge's released file (a whole pickled model)."),
        out: Path = typer.Argument(..., help="Output model directory (replaced atomically)."),
        tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Local CLIP tokenizer directory."),
        no_text: bool = typer.Option(False, "--no-text", help="Drop the text encoder (no tokenizer needed)."),
        name: str = typer.Option("geobridge-official", "--name", help="Model name in config.json."),
        published: str = typer.Option("geobridge", "--published", help="Published-table rows for README.md."),
        licence: str = typer.Option("not stated", "--licence", help=_LICENCE_HELP),
        source_url: str = typer.Option("not stated", "--source-url", help="Where it was downloaded."),
    ) -> None:
        """GeoBridge's pickled whole model: four CLIPs (drone, street, satellite, text) + logit_scale."""
        from geobridge.models.convert import convert_geobridge

        _check_input(checkpoint)
        _run(
            lambda: convert_geobridge(checkpoint, tokenizer=tokenizer, with_text=not no_text, name=name),
            out,
            published,
            licence,
            source_url,
        )

    @convert_app.command("sample4geo")
    def sample4geo_command(
        checkpoint: Path = typer.Argument(..., help="A Sample4Geo state_dict (.pth), 'module.' or not."),
        out: Path = typer.Argument(..., help="Output model directory (replaced atomically)."),
        arch: str = typer.Option("convnext_base.fb_in22k_ft_in1k_384", "--arch", help="timm model name."),
        img_size: int = typer.Option(384, "--img-size", help="Satellite and drone input size (square)."),
        street_size: Optional[str] = typer.Option(
            None,
            "--street-size",
            metavar="HxW",
            help="Street/panorama size, e.g. 140x768 (CVUSA, CVACT), 384x768 (VIGOR); default --img-size.",
        ),
        name: Optional[str] = typer.Option(None, "--name", help="Model name in config.json."),
        published: Optional[str] = typer.Option(
            None, "--published", help="Published-table rows for README.md, e.g. sample4geo-u1652."
        ),
        licence: str = typer.Option("not stated", "--licence", help=_LICENCE_HELP),
        source_url: str = typer.Option("not stated", "--source-url", help="Where it was downloaded."),
    ) -> None:
        """Sample4Geo's state_dict: one timm backbone ('model.*') shared by every view + logit_scale."""
        from geobridge.models.convert import convert_sample4geo

        _check_input(checkpoint)
        street = _parse_size(street_size) if street_size is not None else None
        if img_size < 1:
            raise fail(f"--img-size must be positive, got {img_size}")
        _run(
            lambda: convert_sample4geo(
                checkpoint, arch=arch, img_size=img_size, street_size=street, name=name or published
            ),
            out,
            published,
            licence,
            source_url,
        )


def _check_input(checkpoint: Path) -> None:
    if not checkpoint.is_file():
        raise fail(f"checkpoint {checkpoint} not found (give the downloaded file)")


def _parse_size(text: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not (sep and height.strip().isdigit() and width.strip().isdigit()) or min(int(height), int(width)) < 1:
        raise fail(f"--street-size {text!r} is not HxW with positive integers, e.g. 140x768")
    return int(height), int(width)


def _run(convert, out: Path, published: str | None, licence: str, source_url: str) -> None:
    """Convert, attach provenance and published rows, write the directory; errors are one line."""
    from geobridge.evaluation.published import rows_for
    from geobridge.models.convert import ConversionError, UnsafePickleError, render_readme, write_model_dir
    from geobridge.models.towers.base import TowerLoadError

    try:
        rows = [row.as_dict() for row in rows_for(published)] if published else []
        model, provenance = convert()
        provenance.licence, provenance.source_url, provenance.published = licence, source_url, published
        write_model_dir(model, out, provenance, render_readme(model.config, provenance, rows))
    except UnsafePickleError as err:
        raise fail(f"refused: {err}") from None
    except (ConversionError, TowerLoadError, ValueError, OSError, RuntimeError) as err:
        raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    views = ", ".join(v.value for v in model.views) + (", text" if model.has_text else "")
    count = sum(p.numel() for p in model.parameters())
    typer.echo(f"wrote {out} ({model.config.name}: {views}; {count:,} parameters)")
