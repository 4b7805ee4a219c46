"""Stages 1-3 of the dataset builder on synthetic GeoTIFFs: seeds over valid pixels, reverse crops
centred on the requested point in any CRS (measured in metres), bad orthomosaics, gates, dedup."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio  # a hard dependency: a broken install must fail here, not skip
from affine import Affine
from pyproj import Transformer

from geobridge.builder.config import GateSettings, SeedSettings  # noqa: E402
from geobridge.builder.dedup import deduplicate  # noqa: E402
from geobridge.builder.gates import failed_gates, score_file, score_image  # noqa: E402
from geobridge.builder.orthomosaic import CropError, Orthomosaic, OrthomosaicError  # noqa: E402
from geobridge.builder.seeds import scan_orthomosaic  # noqa: E402
from geobridge.geo import Footprint, haversine_m, offset_latlon  # noqa: E402

CENTRE = (47.3770, 8.5040)  # a marker is painted here in every synthetic raster


def write_marked_geotiff(
    path, crs: str, gsd: float, size: int = 600, nodata_left: int = 0, with_georef: bool = True
):
    """A textured RGB GeoTIFF centred near CENTRE with a bright 6 m square marker exactly on CENTRE.

    ``gsd`` is in the CRS's units. Columns < ``nodata_left`` are masked out (nodata)."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    cx, cy = to_crs.transform(CENTRE[1] + 0.0003, CENTRE[0] - 0.0002)  # raster centre a bit off the marker
    transform = Affine(gsd, 0.0, cx - size / 2 * gsd, 0.0, -gsd, cy + size / 2 * gsd)
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, size=(3, size, size), dtype=np.uint8)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    xs = transform.a * cols + transform.c
    ys = transform.e * rows + transform.f
    lon, lat = to_ll.transform(xs, ys)
    d_north = (lat - CENTRE[0]) * 111_194.9
    d_east = (lon - CENTRE[1]) * 111_194.9 * math.cos(math.radians(CENTRE[0]))
    marker = (np.abs(d_north) <= 3) & (np.abs(d_east) <= 3)
    image[:, marker] = 255
    mask = np.full((size, size), 255, np.uint8)
    mask[:, :nodata_left] = 0
    image[:, mask == 0] = 0
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        tiled=True,
        blockxsize=128,
        blockysize=128,
    )
    if with_georef:
        profile.update(crs=crs, transform=transform)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(image)
            dst.write_mask(mask)
    return path


def marker_offset_m(crop: np.ndarray, size_m: float) -> float:
    """Distance in metres between the crop's centre and the white marker's centroid."""
    white = np.all(crop >= 250, axis=-1)
    assert white.sum() > 0, "marker not found in crop"
    r, c = np.argwhere(white).mean(axis=0)
    n = crop.shape[0]
    return math.hypot(r + 0.5 - n / 2, c + 0.5 - n / 2) * size_m / n


@pytest.mark.parametrize("crs,gsd", [("EPSG:32632", 0.5), ("EPSG:3857", 0.7), ("EPSG:4326", 0.000006)])
def test_reverse_crop_is_centred_in_metres_in_any_crs(tmp_path, crs, gsd):
    path = write_marked_geotiff(tmp_path / "ortho.tif", crs, gsd)
    with Orthomosaic(path) as ortho:
        assert 0.4 < ortho.gsd_m < 0.8
        for size_m in (40.0, 80.0):
            crop = ortho.crop(*CENTRE, size_m=size_m, size_px=128)
            assert crop.image.shape == (128, 128, 3)
            assert marker_offset_m(crop.image, size_m) < 0.6
        # a crop centred 10 m east puts the marker 10 m west of the centre
        lat, lon = offset_latlon(*CENTRE, 10.0, 0.0)
        crop = ortho.crop(float(lat), float(lon), size_m=80.0, size_px=128).image
        assert 9.0 < marker_offset_m(crop, 80.0) < 11.0
        white_cols = np.argwhere(np.all(crop >= 250, axis=-1))[:, 1]
        assert white_cols.mean() < 64  # west of the centre: north-up, east to the right


def test_crop_off_the_edge_and_over_nodata_are_refused_with_reasons(tmp_path):
    path = write_marked_geotiff(tmp_path / "ortho.tif", "EPSG:32632", 0.5, size=400, nodata_left=150)
    with Orthomosaic(path) as ortho:
        with pytest.raises(CropError, match="falls off the edge"):
            ortho.crop(*CENTRE, size_m=400.0, size_px=64)
        west_lat, west_lon = ortho.pixel_to_latlon(200, 60)  # inside the nodata band
        with pytest.raises(CropError, match="nodata"):
            ortho.crop(float(west_lat), float(west_lon), size_m=40.0, size_px=64)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_orthomosaic_without_georeference_or_with_untransformable_crs(tmp_path):
    plain = write_marked_geotiff(tmp_path / "plain.tif", "EPSG:32632", 0.5, size=64, with_georef=False)
    with pytest.raises(OrthomosaicError, match="no geo-reference"):
        Orthomosaic(plain)
    engineering = (
        'LOCAL_CS["site grid",LOCAL_DATUM["site",32767],UNIT["metre",1],AXIS["x",EAST],AXIS["y",NORTH]]'
    )
    path = tmp_path / "local.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=32,
        height=32,
        count=3,
        dtype="uint8",
        crs=engineering,
        transform=Affine(0.5, 0.0, 1000, 0.0, -0.5, 2000),
    ) as dst:
        dst.write(np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(OrthomosaicError, match="cannot be transformed"):
        Orthomosaic(path)
    with pytest.raises(OrthomosaicError, match="not found"):
        Orthomosaic(tmp_path / "missing.tif")


def test_seeds_cover_valid_pixels_only_with_ground_footprints(tmp_path):
    path = write_marked_geotiff(tmp_path / "ortho.tif", "EPSG:32632", 0.5, size=600, nodata_left=300)
    scan = scan_orthomosaic(path, SeedSettings(window_m=100, stride_m=100, min_valid_fraction=0.9))
    # 300 x 300 m raster, 100 m windows: 9 windows, the western third+ is nodata
    assert scan.windows == 9
    assert scan.rejected_nodata == 6  # columns 0-199 and 200-399 overlap the nodata band
    assert len(scan.seeds) == 3
    with Orthomosaic(path) as ortho:
        for seed in scan.seeds:
            assert seed.gsd_m == pytest.approx(0.5, rel=1e-3)
            assert seed.footprint.width_m == pytest.approx(100, rel=0.01)
            assert seed.footprint.height_m == pytest.approx(100, rel=0.01)
            row, col = ortho.latlon_to_pixel(seed.lat, seed.lon)
            assert col > 400  # all in the valid east
            assert seed.footprint.contains(seed.lat, seed.lon)


def test_gates_score_sharp_blurred_flat_and_uniform_images():
    import cv2

    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 4)
    water = np.full((128, 128, 3), (40, 70, 130), np.uint8)
    s_sharp, s_blur, s_water = score_image(sharp), score_image(blurred), score_image(water)
    assert s_sharp.blur > 20 * s_blur.blur
    assert s_water.entropy == pytest.approx(0.0) and s_water.contrast == pytest.approx(0.0)
    assert s_sharp.entropy > 7.0
    settings = GateSettings(blur_min=20, contrast_min=12, entropy_min=4)
    assert failed_gates(s_sharp, settings) == []
    assert "blur" in failed_gates(s_blur, settings)
    assert failed_gates(s_water, settings) == ["blur", "contrast", "entropy"]


def test_score_file_matches_in_memory_scores(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    from_file, in_memory = score_file(tmp_path / "a.png"), score_image(image)
    # the decoder's own grey conversion rounds a little differently from cvtColor
    assert from_file.entropy == pytest.approx(in_memory.entropy, abs=0.01)
    assert from_file.blur == pytest.approx(in_memory.blur, rel=0.02)
    assert from_file.contrast == pytest.approx(in_memory.contrast, rel=0.02)
    with pytest.raises(ValueError, match="cannot decode"):
        (tmp_path / "bad.png").write_bytes(b"<html>nope</html>")
        score_file(tmp_path / "bad.png")


def test_dedup_measures_overlap_in_metres_across_scales():
    lat, lon = CENTRE
    big = Footprint.around(lat, lon, 180)
    small_same_place = Footprint.around(lat, lon, 80)
    lat2, lon2 = offset_latlon(lat, lon, 150.0, 0.0)  # 150 m east: 80 m crops there do not touch
    far = Footprint.around(float(lat2), float(lon2), 80)
    # 110 m north: the 100 m box spans 60..160 m north, the 180 m box up to 90 m: 30% of the smaller
    lat3, lon3 = offset_latlon(lat, lon, 0.0, 110.0)
    neighbour = Footprint.around(float(lat3), float(lon3), 100)
    decisions = deduplicate([big, small_same_place, far, neighbour], max_overlap=0.5)
    assert [d.kept for d in decisions] == [True, False, True, True]
    assert decisions[1].duplicate_of == 0 and decisions[1].overlap == pytest.approx(1.0)
    assert decisions[3].overlap == pytest.approx(0.30, abs=0.01)
    strict = deduplicate([big, neighbour], max_overlap=0.25)
    assert [d.kept for d in strict] == [True, False]
    assert haversine_m(lat, lon, *far.centre) == pytest.approx(150, abs=0.5)


def test_north_first_rolls_the_panorama_to_face_north():
    from geobridge.builder.pipeline import north_first

    width = 360
    pano = np.zeros((4, width, 3), np.uint8)
    heading = 90.0  # column 0 faces east, so north is 270 degrees clockwise = column 270
    pano[:, 270] = 255
    rolled = north_first(pano, heading)
    assert np.all(rolled[:, 0] == 255) and rolled[:, 1:].max() == 0
    assert north_first(pano, 0.0) is pano


def test_spatial_splits_keep_neighbours_together():
    from geobridge.builder.config import SplitSettings
    from geobridge.builder.pipeline import assign_splits

    settings = SplitSettings(val=0.2, test=0.3, block_m=100)
    rng = np.random.default_rng(0)
    points = [
        tuple(float(v) for v in offset_latlon(*CENTRE, e, n)) for e, n in rng.uniform(0, 3000, size=(2000, 2))
    ]
    splits = assign_splits(points, settings, seed=0)
    assert assign_splits(points, settings, seed=0) == splits
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert shares["test"] == pytest.approx(0.3, abs=0.07) and shares["val"] == pytest.approx(0.2, abs=0.07)
    # two points 1 m apart inside one block always share a split
    a = offset_latlon(*CENTRE, 50.0, 50.0)
    b = offset_latlon(*CENTRE, 51.0, 50.0)
    for seed in range(20):
        pair = assign_splits([points[0], tuple(map(float, a)), tuple(map(float, b))], settings, seed=seed)
        assert pair[1] == pair[2]


def test_journal_survives_a_torn_line_and_discards_other_settings(tmp_path):
    from geobridge.builder.journal import Journal, StageMarker

    journal = Journal(tmp_path / "stage.jsonl", "id", fingerprint="abc")
    journal.extend([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    with (tmp_path / "stage.jsonl").open("a") as fh:
        fh.write('{"id": "c", "v"')  # the process died while writing
    reopened = Journal(tmp_path / "stage.jsonl", "id", fingerprint="abc")
    assert set(reopened.records) == {"a", "b"} and "c" not in reopened
    reopened.append({"id": "c", "v": 3})  # redone after the interruption
    assert Journal(tmp_path / "stage.jsonl", "id", fingerprint="abc").get("c") == {"id": "c", "v": 3}
    changed = Journal(tmp_path / "stage.jsonl", "id", fingerprint="other")
    assert changed.records == {} and not (tmp_path / "stage.jsonl").exists()
    marker = StageMarker(tmp_path / "stage.done.json", "abc")
    assert marker.done() is None
    marker.mark({"kept": 3})
    assert marker.done()["kept"] == 3 and StageMarker(tmp_path / "stage.done.json", "other").done() is None
