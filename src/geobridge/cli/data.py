"""Commands of the `data` job: ``geobridge data prepare``.

    geobridge data prepare --dataset university1652 --root /data/University-1652 --out u1652-train.parquet
    geobridge data prepare --dataset vigor --root /data/VIGOR --option mode=same --views street,satellite --out v.parquet

``prepare`` writes a benchmark's training split as a manifest: exactly the items a training run
reads (one row per item, items of a place sharing its id; see ``geobridge.data.places``), with
paths to the original files (nothing is copied; paths under the manifest's folder are stored
relative to it, others absolute). Train on it with ``data.manifest=OUT data.train_split=train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail

DEFAULT_VIEWS = "drone,street,satellite,map,ground,text"


def parse_options(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` loader options; values are read as YAML (``altitude=200`` is a number)."""
    import yaml

    options: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad --option {item!r}: expected KEY=VALUE, e.g. mode=same")
        options[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return options


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    data_app = typer.Typer(
        help="Datasets as training data: write a benchmark's training split as a manifest.",
        no_args_is_help=True,
    )
    app.add_typer(data_app, name="data")

    @data_app.command("prepare")
    def prepare_command(
        dataset: str = typer.Option(
            ...,
            "--dataset",
            help="Benchmark name: university1652, sues200, vigor, cvusa, cvact, geotext1652, geoloc, world.",
        ),
        root: Path = typer.Option(..., "--root", help="The dataset's root folder, in its released layout."),
        out: Path = typer.Option(..., "--out", help="Manifest to write (.parquet)."),
        option: Optional[list[str]] = typer.Option(
            None,
            "--option",
            help="Loader option KEY=VALUE (repeatable), e.g. mode=same (VIGOR), altitude=200 (SUES-200).",
        ),
        views: str = typer.Option(
            DEFAULT_VIEWS,
            "--views",
            help="Comma-separated views to keep; the one with the "
            "most images sets the epoch (one item per image).",
        ),
    ) -> None:
        """Write a benchmark's training split as a manifest (one row per training item; no copies)."""
        from collections import Counter

        from geobridge.data.sources import SourceSpec, training_items
        from geobridge.records import write_manifest
        from geobridge.views import View

        if out.suffix != ".parquet":
            raise fail(f"--out must end in .parquet, got {out}")
        try:
            chosen = [View.parse(v) for v in views.split(",") if v.strip()]
            spec = SourceSpec(dataset=dataset, root=str(root), options=parse_options(list(option or [])))
            items = training_items(spec, chosen)
        except (ValueError, FileNotFoundError) as err:
            raise fail(str(err)) from None
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_manifest(items, out)
        except OSError as err:
            raise fail(f"cannot write {out}: {err.strerror or err}") from None
        places = len({loc.id for loc in items})
        per_view = Counter(v.value for loc in items for v in loc.views if v.is_image)
        summary = ", ".join(f"{name} {count}" for name, count in per_view.items())
        typer.echo(f"wrote {len(items)} training items of {places} places ({summary}) to {out}")
