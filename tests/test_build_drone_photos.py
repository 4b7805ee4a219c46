"""Real drone photos: a folder of geotagged photos (EXIF GPS + DJI XMP, written the way the
cameras write them) becomes drone <-> satellite (+ street) records around each photo, nadir and
oblique told apart by gimbal pitch; ``geobridge locate PHOTO`` reports the error in metres
against the photo's own GPS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_build_pipeline import PRODUCTS, products  # noqa: F401 (module fixture: rendered products)
from test_photo_metadata import DJI_XMP_ATTRIBUTES, camera_jpeg

from geobridge.builder.config import DronePhotoSettings, DroneSubsetSettings
from geobridge.builder.drone_subset import complete_drone_photos, photo_footprint
from geobridge.data.photo_metadata import PhotoMetadata
from geobridge.records import read_manifest


def test_footprint_from_height_field_of_view_and_pitch():
    settings = DronePhotoSettings(hfov_deg=90.0, default_altitude_m=40.0, oblique_scale=2.0)

    def tagged(pitch: float) -> PhotoMetadata:
        return PhotoMetadata(lat=60.0, lon=25.0, relative_altitude_m=50.0, gimbal_pitch_deg=pitch)

    nadir, oblique = photo_footprint(tagged(-90), settings), photo_footprint(tagged(-30), settings)
    untagged = photo_footprint(PhotoMetadata(lat=60.0, lon=25.0), settings)
    assert nadir.width_m == pytest.approx(100.0, rel=0.01)  # 2 x 50 m x tan 45
    assert oblique.width_m == pytest.approx(200.0, rel=0.01)
    assert untagged.width_m == pytest.approx(80.0, rel=0.01)
    assert nadir.centre == pytest.approx((60.0, 25.0))


def test_a_folder_of_geotagged_photos_becomes_records(products, tmp_path):  # noqa: F811
    from geobridge.builder.orthomosaic import Orthomosaic
    from geobridge.builder.providers.local import LocalPanoramaCatalogue, XYZDirectory
    from geobridge.builder.providers.xyz import TileMosaicSatellite
    from geobridge.geo import offset_latlon

    catalogue = LocalPanoramaCatalogue(products.catalogue)
    photos = tmp_path / "photos" / "test"
    photos.mkdir(parents=True)
    with Orthomosaic(products.orthomosaic) as ortho:
        middle = ortho.pixel_to_latlon(ortho.height / 2, 0)[0]
        pano = sorted(catalogue.panoramas, key=lambda p: abs(p.lat - middle))[0]
        lat, lon = (float(v) for v in offset_latlon(pano.lat, pano.lon, 5.0, 0.0))
        nadir = camera_jpeg(
            photos / "DJI_0001.JPG",
            lat,
            lon,
            92.0,
            size=(400, 300),
            xmp=DJI_XMP_ATTRIBUTES.replace("{pitch}", "-90.00"),
        )
        camera_jpeg(
            photos / "DJI_0002.JPG",
            lat,
            lon,
            92.0,
            size=(400, 300),
            xmp=DJI_XMP_ATTRIBUTES.replace("{pitch}", "-35.00"),
        )
    phone = camera_jpeg(photos / "IMG_0003.jpg", lat + 0.05, lon, 10.0, make="Apple")  # 5 km off, no tiles
    camera_jpeg(photos / "DJI_0004.JPG", None, None)  # GPS off
    (photos / "DJI_0005.JPG").write_bytes(nadir.read_bytes()[:200])  # truncated copy
    satellite = TileMosaicSatellite(XYZDirectory(products.tiles), PRODUCTS.tile_zoom)
    result = complete_drone_photos(
        tmp_path / "photos",
        tmp_path / "out",
        satellite,
        catalogue,
        DroneSubsetSettings(search_radius_m=30, size_px=64),
        DronePhotoSettings(max_side_px=128),
        progress=False,
    )
    assert result.completed == 2
    reasons = {s["item"]: s["reason"] for s in result.skipped}
    assert "no GPS position" in reasons["test/DJI_0004.JPG"]
    assert "unreadable" in reasons["test/DJI_0005.JPG"]
    assert reasons[phone.stem].startswith("satellite:")
    locations = {loc.id: loc for loc in read_manifest(result.manifest)}
    assert set(locations) == {"DJI_0001", "DJI_0002"}
    first, second = locations["DJI_0001"], locations["DJI_0002"]
    assert (first.lat, first.lon) == pytest.approx((lat, lon), abs=1e-6)
    assert first.extra["view_kind"] == "nadir" and second.extra["view_kind"] == "oblique"
    assert first.extra["relative_altitude_m"] == pytest.approx(50.2)
    assert second.extra["size_m"] == pytest.approx(2 * first.extra["size_m"])
    assert first.extra["pano_id"] == pano.id and first.path("street").exists()
    assert max(Image.open(first.path("drone")).size) == 128  # stored downsampled
    assert np.asarray(Image.open(first.path("satellite"))).shape == (64, 64, 3)
    assert json.loads((tmp_path / "out" / "drone-photos.json").read_text())["completed"] == 2
    assert not list((tmp_path / "out").glob("*/drone/DJI_0005.png"))


def test_locate_reports_the_error_against_the_photos_own_gps(tmp_path, tiny_world_dir, capsys):
    from geobridge.cli import main
    from geobridge.models import create_model
    from geobridge.retrieval.gallery import Gallery

    model = create_model("tiny")
    model.save_pretrained(tmp_path / "model")
    locations = read_manifest(tiny_world_dir)
    Gallery.build(
        model, locations, "satellite", out=tmp_path / "gallery", model_path=tmp_path / "model", progress=False
    )
    truth = locations[3]
    photo = camera_jpeg(
        tmp_path / "DJI_0007.JPG",
        truth.lat,
        truth.lon,
        80.0,
        size=(64, 64),
        xmp=DJI_XMP_ATTRIBUTES.replace("{pitch}", "-90.00"),
    )
    code = main(["locate", str(photo), "--gallery", str(tmp_path / "gallery"), "--view", "drone", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert (result["true_lat"], result["true_lon"]) == pytest.approx((truth.lat, truth.lon), abs=1e-6)
    from geobridge.geo import haversine_m

    for match in result["matches"]:
        expected = haversine_m(truth.lat, truth.lon, match["lat"], match["lon"])
        assert match["error_m"] == pytest.approx(expected, abs=0.5)
