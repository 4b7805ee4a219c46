"""The whole dataset build end to end on the embedded world's products: orthomosaic GeoTIFF,
panorama catalogue and XYZ tiles served by a loopback server. The built triples are checked to be
the right places against the world's ground truth, in metres; bad inputs are skipped with their
reasons; an interrupted build resumes without redoing finished work."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_build_fakes import HTML_ERROR, FakeServer

from geobridge.builder.config import parse_build_config
from geobridge.builder.pipeline import Build, run_build
from geobridge.builder.products import ProductSettings, orthomosaic_settings, render_products, world_from_file
from geobridge.records import read_manifest

PRODUCTS = ProductSettings(
    seed=0, world_size_m=700, regions=2, gsd_m=0.5, panoramas=16, panorama_height_px=48, tile_zoom=18
)
SIZE_PX = 128


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    return render_products(tmp_path_factory.mktemp("products") / "world", PRODUCTS, progress=False)


@pytest.fixture(scope="module")
def inputs(products, tmp_path_factory):
    """A catalogue with broken rows added, and an orthomosaic without geo-reference."""
    import rasterio

    root = tmp_path_factory.mktemp("inputs")
    lines = products.catalogue.read_text().splitlines()
    broken = ["bad1,not-a-lat,8.5,0,panoramas/x.png", "bad2,47.377,,0,panoramas/x.png"]
    rows = (
        [lines[0]]
        + [line.replace(",panoramas/", f",{products.root}/panoramas/") for line in lines[1:]]
        + broken
    )
    (root / "catalogue.csv").write_text("\n".join(rows) + "\n")
    with rasterio.open(
        root / "plain.tif", "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8"
    ) as dst:
        dst.write(np.full((3, 64, 64), 128, np.uint8))
    return root


def tile_server(products, html_tiles: set) -> FakeServer:
    server = FakeServer()

    def tile(path, query, headers, body):
        z, x, y = (int(v) for v in path.removesuffix(".png").split("/")[-3:])
        if (x, y) in html_tiles:
            return 200, "text/html; charset=utf-8", HTML_ERROR
        file = products.tiles / str(z) / str(x) / f"{y}.png"
        return (200, "image/png", file.read_bytes()) if file.exists() else (404, "text/plain", b"no tile")

    server.prefix_routes.append(("/tiles/", tile))
    return server


def config(products, inputs, out: Path, tile_url: str):
    return parse_build_config(
        {
            "out": str(out),
            "orthomosaics": [str(products.orthomosaic), str(inputs / "plain.tif")],
            "panoramas": {"kind": "local", "catalogue": str(inputs / "catalogue.csv")},
            "satellite": {
                "kind": "xyz-url",
                "url": tile_url + "/tiles/{z}/{x}/{y}.png",
                "zoom": PRODUCTS.tile_zoom,
            },
            "crop": {"scales_m": [80, 100, 120, 150, 180], "size_px": SIZE_PX},
            "seeds": {"window_m": 200, "stride_m": 150},
            "text": {"world": str(products.world_file)},
            "split": {"block_m": 150, "val": 0.2, "test": 0.3},
            "http": {"requests_per_second": 1000, "retries": 1, "backoff_s": 0.01},
        }
    )


def grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def offset_m(image: np.ndarray, truth: np.ndarray, size_m: float) -> float:
    """Translation between two north-up images of the same ground size, in metres (phase correlation)."""
    import cv2

    window = cv2.createHanningWindow(image.shape[:2][::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(grey(image), grey(truth), window)
    return math.hypot(dx, dy) * size_m / image.shape[0]


def html_tile_near(products) -> tuple[int, int]:
    """The tile under the first catalogue panorama (its locations must be skipped, not crash)."""
    from geobridge.builder.providers.xyz import tile_fractions

    first = products.catalogue.read_text().splitlines()[1].split(",")
    x, y = tile_fractions(np.array(float(first[1])), np.array(float(first[2])), PRODUCTS.tile_zoom)
    return int(x), int(y)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_build_end_to_end_places_every_triple_on_the_panorama(products, inputs, tmp_path):
    from PIL import Image

    from geobridge.world.render import RenderSettings, render_satellite

    bad_tile = html_tile_near(products)
    with tile_server(products, {bad_tile}) as server:
        result = run_build(config(products, inputs, tmp_path / "out", server.url), progress=False)
    locations = read_manifest(result.manifest)
    assert len(locations) >= 4
    world = world_from_file(products.world_file)
    drone_settings, satellite_settings = orthomosaic_settings(PRODUCTS), RenderSettings()
    worst = {"drone": 0.0, "satellite": 0.0}
    for loc in locations:
        scale = float(loc.extra["scale_m"])
        assert scale in (80, 100, 120, 150, 180)
        for view, settings in (("drone", drone_settings), ("satellite", satellite_settings)):
            image = np.asarray(Image.open(loc.path(view)).convert("RGB"))
            assert image.shape == (SIZE_PX, SIZE_PX, 3)
            truth = render_satellite(
                world, loc.lat, loc.lon, size_px=SIZE_PX, ground_m=scale, settings=settings
            )
            worst[view] = max(worst[view], offset_m(image, truth, scale))
        street = np.asarray(Image.open(loc.path("street")))
        assert street.shape[1] == 2 * street.shape[0]
        assert loc.text and loc.extra["text_source"].startswith("world:")
        assert (Path(result.manifest).parent / loc.split / "text.csv").exists()
    # centred on the panorama's true position to about a metre (pixels are 0.6-1.4 m here)
    assert worst["drone"] < 1.5 and worst["satellite"] < 1.5, worst
    # the measurement itself can see an error: a truth rendered 8 m off is found 8 m off
    loc = locations[0]
    scale = float(loc.extra["scale_m"])
    from geobridge.geo import offset_latlon

    moved = offset_latlon(loc.lat, loc.lon, 8.0, 0.0)
    shifted = render_satellite(
        world, float(moved[0]), float(moved[1]), size_px=SIZE_PX, ground_m=scale, settings=drone_settings
    )
    measured = offset_m(np.asarray(Image.open(loc.path("drone")).convert("RGB")), shifted, scale)
    assert 6.5 < measured < 9.5

    report = (tmp_path / "out" / "report.md").read_text()
    summaries = result.summaries
    assert summaries["seeds"]["orthomosaics_skipped"][0]["item"].endswith("plain.tif")
    assert "no geo-reference" in report
    assert any("bad1" not in r and "row" in r for r in summaries["candidates"]["catalogue_rows_skipped"])
    assert len(summaries["candidates"]["catalogue_rows_skipped"]) == 2
    assert (
        "HTML page instead of an image" in report
    )  # the HTML tile's locations were skipped, the run went on
    assert any("HTML" in s["reason"] for s in summaries["align"]["skipped"])
    assert summaries["export"]["locations"] == len(locations) == summaries["align"]["aligned"]
    assert (tmp_path / "out" / "report.png").stat().st_size > 1000
    assert (tmp_path / "out" / "samples.png").stat().st_size > 1000
    per_scale = summaries["clean"]["kept_per_scale"]
    assert sum(per_scale.values()) == summaries["clean"]["kept"]
    # every kept pair of locations overlaps at most 50% on the ground
    from geobridge.geo import Footprint

    fps = [Footprint.around(loc.lat, loc.lon, float(loc.extra["scale_m"])) for loc in locations]
    assert all(a.overlap_fraction(b) <= 0.5 for i, a in enumerate(fps) for b in fps[i + 1 :])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_interrupted_build_resumes_without_redoing_work(products, inputs, tmp_path, monkeypatch):
    from geobridge.builder.providers import xyz

    original = xyz.TileMosaicSatellite.fetch
    calls = {"n": 0, "limit": 2}

    def counting_fetch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > calls["limit"]:
            raise KeyboardInterrupt("simulated interrupt")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(xyz.TileMosaicSatellite, "fetch", counting_fetch)
    with tile_server(products, set()) as server:
        cfg = config(products, inputs, tmp_path / "out", server.url)
        with pytest.raises(KeyboardInterrupt):
            run_build(cfg, progress=False)
        work = tmp_path / "out" / "_work"
        assert (work / "clean.done.json").exists() and not (work / "align.done.json").exists()
        assert not (tmp_path / "out" / "manifest.parquet").exists()
        crops_before = {p.name: p.stat().st_mtime_ns for p in (work / "drone").glob("*.png")}
        journal_lines = (work / "align.jsonl").read_text().splitlines()
        assert len(journal_lines) == 1 + 2  # header + the two finished locations
        calls.update(n=0, limit=10**6)
        result = run_build(cfg, progress=False)
        kept = result.summaries["clean"]["kept"]
        assert calls["n"] == kept - 2  # only the unfinished locations were fetched
        assert {
            p.name: p.stat().st_mtime_ns for p in (work / "drone").glob("*.png")
        } == crops_before  # stage 2 not redone
        calls["n"] = 0
        again = run_build(cfg, progress=False)  # everything done: nothing is fetched again
        assert calls["n"] == 0
        assert again.summaries["export"]["locations"] == result.summaries["export"]["locations"] == kept
        # changing the gates redoes stage 3 onwards but keeps the crops
        stricter = cfg.model_copy(update={"gates": cfg.gates.model_copy(update={"entropy_min": 7.9})})
        strict = Build(stricter, progress=False).run()
        assert strict.summaries["clean"]["kept"] < kept
        assert {p.name: p.stat().st_mtime_ns for p in (work / "drone").glob("*.png")} == crops_before
        manifest_ids = {loc.id for loc in read_manifest(strict.manifest)}
        on_disk = {
            p.stem
            for split in ("train", "val", "test")
            for p in (tmp_path / "out" / split).glob("drone/*.png")
        }
        assert on_disk == manifest_ids  # stale layout images of the earlier export were removed


def test_complete_a_released_drone_subset(products, tmp_path):
    """Drone images named by their footprint box get their satellite image and nearest panorama."""
    from PIL import Image

    from geobridge.builder.config import DroneSubsetSettings
    from geobridge.builder.drone_subset import complete_drone_subset
    from geobridge.builder.orthomosaic import Orthomosaic
    from geobridge.builder.providers.local import LocalPanoramaCatalogue, XYZDirectory
    from geobridge.builder.providers.xyz import TileMosaicSatellite
    from geobridge.geo import Footprint, offset_latlon

    catalogue = LocalPanoramaCatalogue(products.catalogue)
    drone_dir = tmp_path / "drone" / "test"
    drone_dir.mkdir(parents=True)
    expected = {}
    with Orthomosaic(products.orthomosaic) as ortho:
        center_lat, center_lon = ortho.pixel_to_latlon(ortho.height / 2, ortho.width / 2)
        ordered = sorted(
            catalogue.panoramas, key=lambda p: (p.lat - center_lat) ** 2 + (p.lon - center_lon) ** 2
        )
        for pano in ordered[:2]:
            lat, lon = offset_latlon(pano.lat, pano.lon, 6.0, -4.0)  # 7 m from the panorama
            fp = Footprint.around(float(lat), float(lon), 80.0)
            name = f"{fp.south:.7f}_{fp.west:.7f}_{fp.north:.7f}_{fp.east:.7f}"
            Image.fromarray(ortho.crop(float(lat), float(lon), 80.0, 96).image).save(
                drone_dir / f"{name}.png"
            )
            expected[name] = pano.id
    (drone_dir / "IMG_0001.png").write_bytes((drone_dir / f"{name}.png").read_bytes())  # no box in the name
    far = Footprint.around(float(lat) + 0.05, float(lon), 80.0)  # 5 km away: no tiles there
    Image.new("RGB", (96, 96)).save(
        drone_dir / f"{far.south:.7f}_{far.west:.7f}_{far.north:.7f}_{far.east:.7f}.png"
    )
    result = complete_drone_subset(
        tmp_path / "drone",
        tmp_path / "out",
        TileMosaicSatellite(XYZDirectory(products.tiles), PRODUCTS.tile_zoom),
        catalogue,
        DroneSubsetSettings(search_radius_m=30, size_px=96),
        progress=False,
    )
    assert result.completed == 2
    reasons = {s["item"]: s["reason"] for s in result.skipped}
    assert "does not match the footprint pattern" in reasons["test/IMG_0001.png"]
    assert any("satellite" in r and "missing" in r for r in reasons.values())
    locations = {loc.id: loc for loc in read_manifest(result.manifest)}
    assert set(locations) == set(expected)
    for name, pano_id in expected.items():
        loc = locations[name]
        assert loc.split == "test" and loc.extra["pano_id"] == pano_id
        assert loc.extra["pano_distance_m"] == pytest.approx(7.2, abs=0.3)
        drone = np.asarray(Image.open(loc.path("drone")).convert("RGB"))
        satellite = np.asarray(Image.open(loc.path("satellite")).convert("RGB"))
        assert offset_m(drone, satellite, 80.0) < 2.0  # the fetched satellite image covers the drone's box
        assert loc.path("street").exists()


@pytest.mark.slow
def test_cli_build_run_on_the_products(products, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from geobridge.cli import app

    cfg = {
        "out": "out",
        "orthomosaics": [str(products.orthomosaic)],
        "panoramas": {"kind": "local", "catalogue": str(products.catalogue)},
        "satellite": {"kind": "mbtiles", "path": "tiles.mbtiles", "zoom": PRODUCTS.tile_zoom},
        "crop": {"scales_m": [80, 120], "size_px": 64},
    }
    from geobridge.builder.providers.local import write_mbtiles

    tiles = {
        (int(p.parts[-3]), int(p.parts[-2]), int(p.stem)): p.read_bytes()
        for p in products.tiles.glob("*/*/*.png")
    }
    write_mbtiles(tmp_path / "tiles.mbtiles", tiles)
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["build", "run", "--quiet", "--config", str(tmp_path / "build.yaml")])
    assert result.exit_code == 0, result.output
    locations = read_manifest(tmp_path / "out" / "manifest.parquet")
    assert locations and "locations ->" in result.output
    assert all(loc.text == "" for loc in locations)  # no endpoint, no known world: empty text...
    assert (
        "no text endpoint configured" in (tmp_path / "out" / "report.md").read_text()
    )  # ...and the report says why


@pytest.mark.slow
def test_cli_products_and_complete_drone(tmp_path):
    import yaml
    from PIL import Image
    from typer.testing import CliRunner

    from geobridge.cli import app
    from geobridge.geo import Footprint

    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "build",
            "products",
            str(tmp_path / "p"),
            "--seed",
            "1",
            "--size-m",
            "300",
            "--panoramas",
            "3",
            "--zoom",
            "17",
        ],
    )
    assert made.exit_code == 0, made.output
    for name in ("orthomosaic.tif", "panoramas.csv", "world.json"):
        assert (tmp_path / "p" / name).exists()
    first = (tmp_path / "p" / "panoramas.csv").read_text().splitlines()[1].split(",")
    fp = Footprint.around(float(first[1]), float(first[2]), 60.0)
    (tmp_path / "drone").mkdir()
    Image.new("RGB", (32, 32), "gray").save(
        tmp_path / "drone" / f"{fp.south:.7f}_{fp.west:.7f}_{fp.north:.7f}_{fp.east:.7f}.png"
    )
    cfg = {
        "out": "unused",
        "panoramas": {"kind": "local", "catalogue": "p/panoramas.csv"},
        "satellite": {"kind": "xyz-dir", "path": "p/tiles", "zoom": 17},
        "drone_subset": {"size_px": 32},
    }
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    done = runner.invoke(
        app,
        [
            "build",
            "complete-drone",
            str(tmp_path / "drone"),
            str(tmp_path / "out"),
            "--config",
            str(tmp_path / "b.yaml"),
            "--quiet",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "1 drone images completed (0 without a panorama" in done.output
    loc = read_manifest(tmp_path / "out")[0]
    assert loc.extra["pano_id"] == first[0] and loc.extra["pano_distance_m"] < 0.5
    bad = runner.invoke(
        app,
        [
            "build",
            "complete-drone",
            str(tmp_path / "nope"),
            str(tmp_path / "out2"),
            "--config",
            str(tmp_path / "b.yaml"),
        ],
    )
    assert bad.exit_code == 2 and "drone folder not found" in bad.output
