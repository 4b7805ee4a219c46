"""Commands of the retrieval job: `geobridge gallery build|add|info|calibrate` and `geobridge locate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail
from geobridge.cli.run_options import checked_device, device_option, precision_option, workers_option

gallery_app = typer.Typer(
    name="gallery",
    help="Build, extend and inspect search galleries (embedded geo-tagged reference images).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.add_typer(gallery_app, name="gallery")
    app.command("locate")(locate)


def _user_errors() -> tuple[type[Exception], ...]:
    from geobridge.records import ManifestError
    from geobridge.retrieval.calibration import CalibrationError
    from geobridge.retrieval.gallery import GalleryError, QueryError
    from geobridge.retrieval.index import SearchIndexError
    from geobridge.retrieval.sources import SourceError

    return (GalleryError, QueryError, SearchIndexError, SourceError, ManifestError, CalibrationError)


def _load_model(model_dir: Path, device: str):
    if not model_dir.is_dir():
        raise fail(
            f"model folder {model_dir} not found: pass a saved model (a folder with config.json and "
            "model.safetensors, e.g. demo/model from `geobridge demo`)"
        )
    from geobridge.models import load_model

    try:
        return load_model(model_dir, device=device)
    except (OSError, ValueError) as err:
        raise fail(f"cannot load the model in {model_dir}: {err}") from None


@gallery_app.command("build")
def build(
    model: Path = typer.Option(..., "--model", help="Saved model folder (config.json + model.safetensors)."),
    images: Path = typer.Option(
        ...,
        "--images",
        help="Manifest (.parquet/.csv), dataset folder with manifest.parquet, or image folder with locations.csv.",
    ),
    view: str = typer.Option(
        "satellite", "--view", help="View of the gallery images: drone, street, satellite, map, ground."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Gallery folder to write (replaced atomically if it exists)."
    ),
    index: str = typer.Option(
        "exact",
        "--index",
        help="'exact' (chunked exact search) or a FAISS string: Flat, IVF1024,PQ64, HNSW32.",
    ),
    split: Optional[str] = typer.Option(
        None, "--split", help="Only locations of this manifest split (e.g. test)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    tta: Optional[str] = typer.Option(
        None, "--tta", help="Test-time augmentation: 'flip' averages with the mirrored image."
    ),
    nprobe: int = typer.Option(16, "--nprobe", min=1, help="IVF lists visited per query (FAISS IVF only)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    calibrate: bool = typer.Option(
        True,
        "--calibrate/--no-calibrate",
        help="From a manifest: calibrate the location estimate's radius on the "
        "held-out split's other views (see `gallery calibrate`).",
    ),
    device: str = device_option(),
    precision: str = precision_option(),
    workers: Optional[int] = workers_option(),
) -> None:
    """Embed the images of one view with a model and save them as a searchable gallery.

    Under torchrun the images are sharded over the ranks (chunks kept in OUT.shards until rank 0
    has saved the gallery; an interrupted run resumes from them)."""
    from geobridge.models.embedder import EmbedOptions
    from geobridge.retrieval.gallery import Gallery
    from geobridge.retrieval.sharded import ranks_from_env, release, remove_shards, shard_dir_for
    from geobridge.retrieval.sources import read_locations

    checked_device(device, precision)
    ranks = ranks_from_env()
    try:
        options = EmbedOptions(
            batch_size=batch_size, num_workers=workers, precision=precision, tta=tta, progress=not quiet
        )
        locations = read_locations(images, view, split=split)
        model_obj = _load_model(model, device)
        gallery = Gallery.build(
            model_obj,
            locations,
            view,
            out=out if ranks.is_main else None,
            index=index,
            model_path=model,
            nprobe=nprobe,
            options=options,
            shard_dir=shard_dir_for(out) if ranks.sharded else None,
        )
    except _user_errors() as err:
        raise fail(str(err)) from None
    if ranks.is_main:
        remove_shards(shard_dir_for(out))
        typer.echo(
            f"gallery {out}: {len(gallery)} {gallery.info.view} entries, index {gallery.info.index}, "
            f"dim {gallery.info.dim}"
        )
        if calibrate:
            _calibrate_after_build(gallery, images, split)
    release(ranks)


def _calibrate_after_build(gallery, images: Path, split: Optional[str]) -> None:
    """Calibrate on the held-out split's other views when the images came with a manifest."""
    from geobridge.records import read_manifest
    from geobridge.retrieval.calibration import calibrate_gallery, describe, held_out_split, query_views

    if not (images.is_file() or (images / "manifest.parquet").exists()):
        return
    try:
        places = read_manifest(images)
        chosen = split or held_out_split(places)
        places = [p for p in places if p.split == chosen]
        views = [v for v in query_views(gallery) if sum(p.has(v) for p in places) >= 2]
        if not views:
            return
        calibration = calibrate_gallery(gallery, places, views, split=chosen or "")
        gallery.set_calibration(calibration)
    except _user_errors() as err:
        typer.echo(f"no calibration of the location estimate: {err}")
        return
    for view in views:
        typer.echo(f"estimate radius, {describe(calibration.views[view])}")


@gallery_app.command("calibrate")
def calibrate_command(
    gallery: Path = typer.Option(..., "--gallery", help="Gallery folder."),
    manifest: Path = typer.Option(
        ..., "--manifest", help="Manifest (or dataset folder) of queries with known places."
    ),
    view: list[str] = typer.Option(
        ..., "--view", help="Query view(s) to calibrate: drone, street, ..., text."
    ),
    split: Optional[str] = typer.Option(
        None, "--split", help="Queries of this split (default: the gallery's own places)."
    ),
    coverage: float = typer.Option(
        0.8, "--coverage", min=0.01, max=0.99, help="Share of held-out places the radius must hold."
    ),
    top: int = typer.Option(5, "--top", min=1, help="Matches the estimate is weighted from."),
    temperature: float = typer.Option(
        0.05, "--temperature", min=1e-4, help="Softmax temperature over the cosine scores."
    ),
    device: str = device_option(),
) -> None:
    """Measure the radius the location estimate holds at on queries whose place is known.

    Writes GALLERY/calibration.json: per view, the split-conformal radius (the ceil((n+1)c)-th
    smallest error of the score-weighted estimate), a 2-fold check and the median error."""
    from geobridge.records import read_manifest
    from geobridge.retrieval.calibration import calibrate_gallery, describe, held_out_split
    from geobridge.retrieval.gallery import Gallery

    checked_device(device)
    try:
        opened = Gallery.load(gallery, device=device)
        places = read_manifest(manifest)
        own = [p for p in places if opened.path_of(p.id) is not None]
        if split is None and own:
            places, label = own, ",".join(sorted({p.split for p in own}))
        else:
            label = split or held_out_split(places) or ""
            places = [p for p in places if p.split == label]
        calibration = calibrate_gallery(
            opened, places, view, coverage=coverage, split=label, top=top, temperature=temperature
        )
        opened.set_calibration(calibration)
    except _user_errors() as err:
        raise fail(str(err)) from None
    for name in calibration.views:
        typer.echo(f"estimate radius, {describe(calibration.views[name])}")


@gallery_app.command("add")
def add(
    gallery: Path = typer.Option(..., "--gallery", help="Existing gallery folder."),
    images: Path = typer.Option(
        ..., "--images", help="Manifest, dataset folder or image folder (as for build)."
    ),
    split: Optional[str] = typer.Option(None, "--split"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    device: str = device_option(),
    precision: str = precision_option(),
    workers: Optional[int] = workers_option(),
) -> None:
    """Embed more locations with the gallery's own model and append them (no rebuild)."""
    from geobridge.models.embedder import EmbedOptions
    from geobridge.retrieval.gallery import Gallery
    from geobridge.retrieval.sources import read_locations

    checked_device(device, precision)
    try:
        opened = Gallery.load(gallery, device=device)
        locations = read_locations(images, opened.info.view, split=split)
        added = opened.add(
            locations,
            options=EmbedOptions(
                batch_size=batch_size, num_workers=workers, precision=precision, progress=not quiet
            ),
        )
    except _user_errors() as err:
        raise fail(str(err)) from None
    typer.echo(f"gallery {gallery}: added {added}, now {len(opened)} entries")


@gallery_app.command("info")
def info(gallery: Path = typer.Option(..., "--gallery", help="Gallery folder.")) -> None:
    """Print what a gallery holds (size, view, index, model), after verifying its checksums."""
    from geobridge.retrieval.gallery import Gallery

    try:
        opened = Gallery.load(gallery)
    except _user_errors() as err:
        raise fail(str(err)) from None
    typer.echo(json.dumps(opened.summary(), indent=2))


def locate(
    images: list[Path] = typer.Argument(None, help="Query image file(s), all of --view."),
    gallery: Path = typer.Option(..., "--gallery", help="Gallery folder (from `geobridge gallery build`)."),
    view: Optional[str] = typer.Option(
        None, "--view", help="View of the query images: drone, street, satellite, map, ground."
    ),
    text: Optional[str] = typer.Option(None, "--text", help="A description of the place instead of images."),
    k: int = typer.Option(5, "--k", min=1, help="How many places to return per query."),
    as_json: bool = typer.Option(False, "--json", help="Print the results (and each estimate) as JSON."),
    true_lat: Optional[float] = typer.Option(
        None, "--true-lat", help="True latitude of the query (adds error_m; default: a photo's GPS)."
    ),
    true_lon: Optional[float] = typer.Option(
        None, "--true-lon", help="True longitude of the query (adds error_m)."
    ),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", help="Manifest giving the queries' true positions (matched by path or id)."
    ),
    tta: Optional[str] = typer.Option(None, "--tta", help="'flip' averages each image with its mirror."),
    device: str = device_option(),
) -> None:
    """Where was this taken? Rank the gallery's places and estimate one position with a radius."""
    from geobridge.retrieval.gallery import Gallery

    if bool(images) == (text is not None):
        raise fail('give query image file(s) with --view, or --text "a description" (not both)')
    if images and view is None:
        raise fail("say which view the query images are with --view drone|street|satellite|map|ground")
    if (true_lat is None) != (true_lon is None):
        raise fail("give both --true-lat and --true-lon")
    checked_device(device)
    n_queries = len(images) if images else 1
    try:
        truth = _truth(images or [], n_queries, true_lat, true_lon, manifest)
        opened = Gallery.load(gallery, device=device)
        if images:
            missing = [p for p in images if not p.is_file()]
            if missing:
                raise fail(f"query image not found: {missing[0]}")
            results = opened.search(images=images, view=view, k=k, truth=truth, tta=tta)
        else:
            results = opened.search(text=text, k=k, truth=truth)
    except _user_errors() as err:
        raise fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    for result in results:
        _print_result(result)


def _truth(images: list[Path], n_queries: int, true_lat, true_lon, manifest: Optional[Path]):
    if true_lat is not None:
        return [(true_lat, true_lon)] * n_queries
    if manifest is None:  # a geotagged photo knows where it was taken: the error is against its own GPS
        from geobridge.data.photo_metadata import photo_positions

        return photo_positions(images)
    if not images:
        raise fail("--manifest gives true positions of query images; for --text use --true-lat/--true-lon")
    from geobridge.records import read_manifest

    by_path, by_id = {}, {}
    for loc in read_manifest(manifest):
        by_id[str(loc.id)] = (loc.lat, loc.lon)
        for path in loc.paths.values():
            if path is not None:
                by_path[str(Path(path).resolve())] = (loc.lat, loc.lon)
    truth = []
    for image in images:
        found = by_path.get(str(image.resolve())) or by_id.get(image.stem)
        if found is None:
            raise fail(
                f"{image} is not in manifest {manifest} (matched by path, then by id = file name without extension)"
            )
        truth.append(found)
    return truth


def _print_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    title = f"{result.query} ({result.view})"
    if result.true_lat is not None:
        title += f", true position {result.true_lat:.6f}, {result.true_lon:.6f}"
    console.print(title, highlight=False, soft_wrap=True)
    table = Table()
    for column in ("rank", "id", "score", "lat", "lon") + (
        ("error_m",) if result.true_lat is not None else ()
    ):
        table.add_column(column, justify="right" if column != "id" else "left")
    for match in result.matches:
        row = [str(match.rank), match.id, f"{match.score:.4f}", f"{match.lat:.6f}", f"{match.lon:.6f}"]
        if match.error_m is not None:
            row.append(f"{match.error_m:.1f}")
        table.add_row(*row)
    console.print(table)
    if result.estimate is not None:
        console.print(_estimate_line(result.estimate), highlight=False, soft_wrap=True)


def _estimate_line(estimate) -> str:
    """The estimate in one line: centre, radius, and the rate it holds at (or that it is uncalibrated)."""
    line = f"estimate {estimate.lat:.6f}, {estimate.lon:.6f} within {estimate.radius_m:,.0f} m"
    if estimate.coverage is None:
        line += " (spread of the top matches; uncalibrated: run `geobridge gallery calibrate`)"
    else:
        line += f" ({estimate.coverage:.0%} of held-out places fall inside)"
    if estimate.error_m is not None:
        line += f", error {estimate.error_m:,.1f} m"
    return line
