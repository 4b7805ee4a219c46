"""Commands of the `train` job: ``geobridge train`` and ``geobridge embed``.

geobridge train --config configs/demo.yaml data.manifest=demo/world/manifest.parquet optim.epochs=5
geobridge train --config sample4geo-u1652 data.root=/data/University-1652
geobridge embed --model demo/model --manifest demo/world/manifest.parquet --view drone --split test --out drone.npz
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail
from geobridge.cli.run_options import checked_device, device_option, precision_option, workers_option
from geobridge.retrieval.sharded import CHUNK_SIZE


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""

    @app.command("train")
    def train_command(
        overrides: Optional[list[str]] = typer.Argument(
            None, help="key=value overrides with dotted keys, e.g. optim.lr=1e-4"
        ),
        config: Optional[str] = typer.Option(
            None,
            "--config",
            "-c",
            help="YAML training config: a path, or a shipped recipe by name (see docs/recipes.md; e.g. demo, sample4geo-u1652, gleam-c).",
        ),
        validate: bool = typer.Option(
            True,
            "--validate/--no-validate",
            help="Retrieval metrics on each source's own evaluation split with its protocol, every val_every steps and each epoch.",
        ),
        show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config and exit."),
        device: Optional[str] = typer.Option(
            None,
            "--device",
            help="auto, cpu, cuda or cuda:N (the config's device= key; default: the config's, auto).",
        ),
    ) -> None:
        """Train a model from a YAML config plus key=value overrides (resumes from OUT/checkpoints/last)."""
        from geobridge.configs import resolve_config
        from geobridge.train.config import ConfigError, TrainConfig

        extra = [f"device={checked_device(device)}"] if device is not None else []
        try:
            cfg = TrainConfig.load(resolve_config(config) if config else None, list(overrides or []) + extra)
        except (ConfigError, FileNotFoundError) as err:
            raise fail(f"{err}") from None
        if show_config:
            typer.echo(cfg.to_yaml())
            return
        if not cfg.data.source_sections():
            raise fail(
                "no training data: set data.manifest=PATH/manifest.parquet (render one with `geobridge world OUT`), "
                "data.dataset=NAME data.root=DIR (a benchmark in its released layout), or data.sources"
            )
        from geobridge.models.towers.base import TowerLoadError
        from geobridge.train import train
        from geobridge.train.engine import TrainingDiverged

        try:
            validate_fn = None
            if validate:
                from geobridge.evaluation.validation import validation_fn

                validate_fn = validation_fn(cfg)
            result = train(cfg, validate_fn=validate_fn)
        # ValueError: a config, manifest, loader option or file content (ConfigError, ManifestError);
        # FileNotFoundError: a missing dataset file (DatasetNotFoundError)
        # TowerLoadError: pretrained weights neither on disk nor downloadable (the advice says how)
        except (ValueError, TrainingDiverged, FileNotFoundError, TowerLoadError) as err:
            raise fail(str(err)) from None
        final = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
        typer.echo(
            f"trained {result.step} steps ({result.epoch} epochs) in {result.seconds:.0f} s; last loss {final}"
            + (f"; best {cfg.best_metric} {result.best:.2f}" if result.best is not None else "")
        )
        if result.skipped_steps:
            typer.echo(
                f"skipped {len(result.skipped_steps)} step(s) with a non-finite loss: {result.skipped_steps[:10]}"
            )
        if result.unreadable_images:
            typer.echo(f"{len(result.unreadable_images)} unreadable image(s) were skipped (names in the log)")
        typer.echo(f"checkpoints: {Path(cfg.output_dir) / 'checkpoints'} (model: checkpoints/last/model)")

    @app.command("embed")
    def embed_command(
        model: Path = typer.Option(..., "--model", help="Saved model directory (e.g. demo/model)."),
        manifest: Path = typer.Option(
            ..., "--manifest", help="Manifest (.parquet) of the locations to embed."
        ),
        view: str = typer.Option(..., "--view", help="drone, street, satellite, map, ground or text."),
        out: Path = typer.Option(..., "--out", help="Output .npz (emb, ids, lat, lon, paths)."),
        split: Optional[str] = typer.Option(None, "--split", help="Only this split (train, val, test)."),
        batch_size: int = typer.Option(32, "--batch-size", min=1),
        tta: Optional[str] = typer.Option(None, "--tta", help="Test-time augmentation: flip."),
        device: str = device_option(),
        precision: str = precision_option(),
        workers: Optional[int] = workers_option(),
        chunk_size: int = typer.Option(
            CHUNK_SIZE,
            "--chunk-size",
            min=1,
            help="Under torchrun: files per resumable chunk written beside OUT.",
        ),
    ) -> None:
        """Embed one view of a manifest's locations into an embeddings file.

        Under torchrun (``torchrun --nproc_per_node N -m geobridge embed ...``) the files are
        sharded over the ranks, each writes its chunks beside OUT, rank 0 merges them in order;
        a rerun of an interrupted run reuses the chunks already written."""
        from geobridge.records import ManifestError, read_manifest
        from geobridge.views import View

        try:
            parsed = View.parse(view)
        except ValueError as err:
            raise fail(str(err)) from None
        if out.suffix != ".npz":
            raise fail(f"--out must end in .npz, got {out}")
        if tta not in (None, "flip"):
            raise fail(f"unknown --tta {tta!r}: the only test-time augmentation is 'flip'")
        checked_device(device, precision)
        try:
            locations = read_manifest(manifest, split=split)
        except ManifestError as err:
            raise fail(str(err)) from None
        if not locations:
            raise fail(f"no locations{f' in split {split!r}' if split else ''} in {manifest}")
        from geobridge.models import load_model
        from geobridge.models.embedder import EmbedOptions
        from geobridge.retrieval.embed import embed_locations, embeddings_of
        from geobridge.retrieval.sharded import (
            encode_sharded,
            ranks_from_env,
            release,
            remove_shards,
            shard_dir_for,
        )

        try:
            loaded = load_model(model, device=device)
        except (FileNotFoundError, ValueError) as err:
            raise fail(f"cannot load model {model}: {err}") from None
        if parsed.is_image and parsed not in loaded.views:
            raise fail(
                f"model {model} has no {parsed.value} tower (it has: {', '.join(v.value for v in loaded.views)})"
            )
        if parsed is View.TEXT and not loaded.has_text:
            raise fail(f"model {model} has no text tower")
        options = EmbedOptions(batch_size=batch_size, num_workers=workers, precision=precision, tta=tta)
        ranks = ranks_from_env()
        if ranks.sharded:
            present = [loc for loc in locations if loc.has(parsed)]
            inputs = [loc.text if parsed is View.TEXT else loc.path(parsed) for loc in present]
            encoding = encode_sharded(loaded, inputs, parsed, options, shard_dir_for(out), ranks, chunk_size)
            embeddings = embeddings_of([present[i] for i in encoding.kept], parsed, encoding.emb, options)
        else:
            embeddings = embed_locations(loaded, locations, parsed, options)
        if len(embeddings) == 0:
            raise fail(f"none of the {len(locations)} locations has a readable {parsed.value} view")
        if ranks.is_main:
            embeddings.save(out)
            remove_shards(shard_dir_for(out))
            typer.echo(f"wrote {len(embeddings)} {parsed.value} embeddings ({embeddings.dim}-d) to {out}")
        release(ranks)
