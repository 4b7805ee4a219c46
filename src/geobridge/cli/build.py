"""Commands of the `build` job: render the embedded world's geo-referenced products, run the
dataset build (GeoLoc's four stages), complete a released GeoLoc drone subset, and build records
around a folder of geotagged drone photos."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail, require_extra

build_app = typer.Typer(
    help="Build GeoLoc-style datasets from orthomosaics, panoramas and satellite tiles.", no_args_is_help=True
)


@build_app.command("products")
def products(
    out: Path = typer.Argument(
        ..., help="Folder to write orthomosaic.tif, tiles/, panoramas/ and world.json into."
    ),
    seed: int = typer.Option(0, "--seed", help="World seed (same seed, same products)."),
    size_m: float = typer.Option(800.0, "--size-m", help="World size in metres."),
    panoramas: int = typer.Option(24, "--panoramas", help="Number of street panoramas."),
    gsd_m: float = typer.Option(0.4, "--gsd", help="Orthomosaic ground sampling distance, metres per pixel."),
    zoom: int = typer.Option(18, "--zoom", help="Zoom level of the XYZ satellite tiles."),
    force: bool = typer.Option(False, "--force", help="Replace an existing products folder."),
) -> None:
    """Render the embedded world's geo-referenced products (what `build run` starts from)."""
    require_extra("build", "geobridge build products", modules=("rasterio",))
    from geobridge.builder.products import ProductSettings, render_products

    if out.exists() and any(out.iterdir()) and not force:
        raise fail(f"{out} already exists and is not empty; choose another folder or pass --force")
    if size_m < 300 or panoramas < 1 or gsd_m <= 0 or not 10 <= zoom <= 21:
        raise fail("need --size-m >= 300, --panoramas >= 1, --gsd > 0 and 10 <= --zoom <= 21")
    result = render_products(
        out, ProductSettings(seed=seed, world_size_m=size_m, panoramas=panoramas, gsd_m=gsd_m, tile_zoom=zoom)
    )
    typer.echo(
        f"wrote {result.orthomosaic}, {result.tile_count} tiles under {result.tiles}, "
        f"{result.panorama_count} panoramas in {result.catalogue}"
    )


@build_app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Build YAML (see configs/build-world.yaml)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Override the config's output folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Run (or resume) the four build stages and export the GeoLoc layout + manifest + report."""
    require_extra("build", "geobridge build run", modules=("rasterio",))
    from geobridge.builder.config import BuildConfigError, load_build_config
    from geobridge.builder.pipeline import BuildError, run_build

    try:
        cfg = load_build_config(config, overrides={"out": str(out.resolve())} if out else None)
        result = run_build(cfg, progress=not quiet)
    except (BuildConfigError, BuildError) as err:
        raise fail(str(err)) from None
    export = result.summaries.get("export", {})
    typer.echo(f"{export.get('locations', 0)} locations -> {result.manifest}; report: {result.report}")


@build_app.command("complete-drone")
def complete_drone(
    drone_dir: Path = typer.Argument(
        ..., help="Folder of released GeoLoc drone images (footprint box in file names)."
    ),
    out: Path = typer.Argument(..., help="Output folder for the completed GeoLoc layout."),
    config: Path = typer.Option(
        ...,
        "--config",
        "-c",
        help="Build YAML: its panoramas, satellite, http and drone_subset sections are used.",
    ),
    pattern: Optional[str] = typer.Option(
        None, "--pattern", help="Regex with named groups south, west, north, east."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Fetch the satellite image and nearest panorama of every drone image of a released subset."""
    from geobridge.builder.config import BuildConfigError, load_build_config
    from geobridge.builder.drone_subset import complete_drone_subset
    from geobridge.builder.providers.base import ProviderError
    from geobridge.builder.providers.factory import make_panorama_provider, make_satellite_provider

    try:
        overrides = {"out": str(out.resolve())}
        cfg = load_build_config(config, overrides=overrides)
        if pattern:
            from geobridge.builder.config import parse_build_config

            raw = cfg.model_dump(mode="json")
            raw["drone_subset"]["name_pattern"] = pattern
            cfg = parse_build_config(raw)
        cache = cfg.http.cache_dir or (out / "_work" / "http-cache")
        satellite = make_satellite_provider(cfg.satellite, cfg.http, cache)
        panoramas = make_panorama_provider(cfg.panoramas, cfg.http, cache)
        result = complete_drone_subset(
            drone_dir, out, satellite, panoramas, cfg.drone_subset, progress=not quiet
        )
    except (BuildConfigError, ProviderError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    typer.echo(
        f"{result.completed} drone images completed ({len(result.without_street)} without a panorama, "
        f"{len(result.skipped)} skipped) -> {result.manifest}"
    )


@build_app.command("drone-photos")
def drone_photos(
    photo_dir: Path = typer.Argument(..., help="Folder of geotagged drone photos (EXIF GPS, DJI XMP)."),
    out: Path = typer.Argument(..., help="Output folder for the GeoLoc layout."),
    config: Path = typer.Option(
        ..., "--config", "-c", help="Build YAML: its panoramas, satellite, http and drone_* sections."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Build drone <-> satellite (+ street) records around each geotagged photo of a folder."""
    from geobridge.builder.config import BuildConfigError, load_build_config
    from geobridge.builder.drone_subset import complete_drone_photos
    from geobridge.builder.providers.base import ProviderError
    from geobridge.builder.providers.factory import make_panorama_provider, make_satellite_provider

    try:
        cfg = load_build_config(config, overrides={"out": str(out.resolve())})
        cache = cfg.http.cache_dir or (out / "_work" / "http-cache")
        satellite = make_satellite_provider(cfg.satellite, cfg.http, cache)
        panoramas = make_panorama_provider(cfg.panoramas, cfg.http, cache)
        result = complete_drone_photos(
            photo_dir, out, satellite, panoramas, cfg.drone_subset, cfg.drone_photos, progress=not quiet
        )
    except (BuildConfigError, ProviderError, FileNotFoundError) as err:
        raise fail(str(err)) from None
    typer.echo(
        f"{result.completed} drone photos placed ({len(result.without_street)} without a panorama, "
        f"{len(result.skipped)} skipped) -> {result.manifest}"
    )


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.add_typer(build_app, name="build")
