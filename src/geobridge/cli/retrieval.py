"""Commands of the retrieval job: `geobridge gallery build|add|info` and `geobridge locate`."""

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
    from geobridge.retrieval.gallery import GalleryError, QueryError
    from geobridge.retrieval.index import SearchIndexError
    from geobridge.retrieval.sources import SourceError

    return (GalleryError, QueryError, SearchIndexError, SourceError, ManifestError)


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
    images: Path = typer.Option(..., "--images", help="Manifest (.parquet/.csv), dataset folder with manifest.parquet, or image folder with locations.csv."),
    view: str = typer.Option("satellite", "--view", help="View of the gallery images: drone, street, satellite, map, ground."),
    out: Path = typer.Option(..., "--out", help="Gallery folder to write (replaced atomically if it exists)."),
    index: str = typer.Option("exact", "--index", help="'exact' (chunked exact search) or a FAISS string: Flat, IVF1024,PQ64, HNSW32."),
    split: Optional[str] = typer.Option(None, "--split", help="Only locations of this manifest split (e.g. test)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    tta: Optional[str] = typer.Option(None, "--tta", help="Test-time augmentation: 'flip' averages with the mirrored image."),
    nprobe: int = typer.Option(16, "--nprobe", min=1, help="IVF lists visited per query (FAISS IVF only)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
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
        options = EmbedOptions(batch_size=batch_size, num_workers=workers, precision=precision, tta=tta,
                               progress=not quiet)
        locations = read_locations(images, view, split=split)
        model_obj = _load_model(model, device)
        gallery = Gallery.build(model_obj, locations, view, out=out if ranks.is_main else None, index=index,
                                model_path=model, nprobe=nprobe, options=options,
                                shard_dir=shard_dir_for(out) if ranks.sharded else None)
    except _user_errors() as err:
        raise fail(str(err)) from None
    if ranks.is_main:
        remove_shards(shard_dir_for(out))
        typer.echo(f"gallery {out}: {len(gallery)} {gallery.info.view} entries, index {gallery.info.index}, "
                   f"dim {gallery.info.dim}")
    release(ranks)


@gallery_app.command("add")
def add(
    gallery: Path = typer.Option(..., "--gallery", help="Existing gallery folder."),
    images: Path = typer.Option(..., "--images", help="Manifest, dataset folder or image folder (as for build)."),
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
        added = opened.add(locations, options=EmbedOptions(batch_size=batch_size, num_workers=workers,
                                                           precision=precision, progress=not quiet))
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
    view: Optional[str] = typer.Option(None, "--view", help="View of the query images: drone, street, satellite, map, ground."),
    text: Optional[str] = typer.Option(None, "--text", help="A description of the place instead of images."),
    k: int = typer.Option(5, "--k", min=1, help="How many places to return per query."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    true_lat: Optional[float] = typer.Option(None, "--true-lat",
                                             help="True latitude of the query (adds error_m; default: a photo's GPS)."),
    true_lon: Optional[float] = typer.Option(None, "--true-lon", help="True longitude of the query (adds error_m)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Manifest giving the queries' true positions (matched by path or id)."),
    tta: Optional[str] = typer.Option(None, "--tta", help="'flip' averages each image with its mirror."),
    device: str = device_option(),
) -> None:
    """Where was this taken? Rank the gallery's places for image or text queries."""
    from geobridge.retrieval.gallery import Gallery

    if bool(images) == (text is not None):
        raise fail("give query image file(s) with --view, or --text \"a description\" (not both)")
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
            raise fail(f"{image} is not in manifest {manifest} (matched by path, then by id = file name without extension)")
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
    for column in ("rank", "id", "score", "lat", "lon") + (("error_m",) if result.true_lat is not None else ()):
        table.add_column(column, justify="right" if column != "id" else "left")
    for match in result.matches:
        row = [str(match.rank), match.id, f"{match.score:.4f}", f"{match.lat:.6f}", f"{match.lon:.6f}"]
        if match.error_m is not None:
            row.append(f"{match.error_m:.1f}")
        table.add_row(*row)
    console.print(table)
