"""Where a camera says a photo was taken: EXIF GPS and DJI's XMP flight and gimbal fields.

Phone and drone cameras write the position into the EXIF GPS IFD (latitude and longitude as
degree, minute, second rationals with an N/S or E/W reference; altitude above sea level with a
reference byte that says below). DJI drones add an XMP packet (an APP1 segment in the JPEG) with
the ``drone-dji`` namespace: the height above the take-off point (``RelativeAltitude``), where
the camera points (``GimbalYawDegree``, ``GimbalPitchDegree``: -90 is straight down) and where
the aircraft heads (``FlightYawDegree``). Everything is optional: a photo without a tag gives None.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GPS_IFD = 0x8825
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4
GPS_ALTITUDE_REF, GPS_ALTITUDE = 5, 6
DJI_NAMESPACE = "http://www.dji.com/drone-dji/1.0/"
DJI_FIELDS = {
    "RelativeAltitude": "relative_altitude_m",
    "GimbalYawDegree": "gimbal_yaw_deg",
    "GimbalPitchDegree": "gimbal_pitch_deg",
    "FlightYawDegree": "flight_yaw_deg",
}
#: a camera pitched at least this far down (degrees below the horizon) looks straight down
NADIR_PITCH_DEG = -75.0


@dataclass(frozen=True)
class PhotoMetadata:
    """The position and pose a photo's tags give (None where a tag is absent)."""

    lat: float | None = None
    lon: float | None = None
    altitude_m: float | None = None  # GPS altitude above sea level
    relative_altitude_m: float | None = None  # DJI: above the take-off point
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    flight_yaw_deg: float | None = None

    @property
    def position(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)

    @property
    def view_kind(self) -> str:
        """``nadir`` (camera pointing down), ``oblique``, or ``unknown`` without a gimbal pitch."""
        if self.gimbal_pitch_deg is None:
            return "unknown"
        return "nadir" if self.gimbal_pitch_deg <= NADIR_PITCH_DEG else "oblique"


def read_photo_metadata(path: str | Path) -> PhotoMetadata:
    """The EXIF GPS and DJI XMP tags of an image file (only its header is read)."""
    from geobridge.images import image_header

    with image_header(path) as image:
        gps = image.getexif().get_ifd(GPS_IFD)
        xmp = image.info.get("xmp")
    lat = _coordinate(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), "S", 90)
    lon = _coordinate(gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), "W", 180)
    altitude = _number(gps.get(GPS_ALTITUDE))
    if altitude is not None and gps.get(GPS_ALTITUDE_REF) in (1, b"\x01"):
        altitude = -altitude
    return PhotoMetadata(lat=lat, lon=lon, altitude_m=altitude, **_dji_fields(xmp))


def photo_positions(paths: Sequence[str | Path]) -> list[tuple[float, float] | None] | None:
    """Each photo's own GPS position (None for a photo without one); None when no photo has one."""
    positions = []
    for path in paths:
        try:
            positions.append(read_photo_metadata(path).position)
        except (OSError, ValueError, SyntaxError):  # not an image PIL can open: no position
            positions.append(None)
    return positions if any(p is not None for p in positions) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _coordinate(dms: Any, ref: Any, negative: str, limit: float) -> float | None:
    """Degrees from an EXIF (degrees, minutes, seconds) triple of rationals and its N/S/E/W ref."""
    if not isinstance(dms, (tuple, list)) or not dms:
        return None
    parts = [_number(v) for v in dms] + [0.0, 0.0]
    if any(p is None for p in parts[:3]):
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600  # type: ignore[operator]
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if str(ref or "").strip().upper().startswith(negative):
        degrees = -degrees
    return degrees if abs(degrees) <= limit else None


def _dji_fields(xmp: bytes | str | None) -> dict[str, float | None]:
    """The DJI fields of an XMP packet, written as attributes or as elements of rdf:Description."""
    found: dict[str, float | None] = {name: None for name in DJI_FIELDS.values()}
    if not xmp:
        return found
    text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    if start < 0 or end < 0:
        return found
    try:
        root = ET.fromstring(text[start : end + len("</x:xmpmeta>")])
    except ET.ParseError:
        return found
    for element in root.iter():
        for tag, name in DJI_FIELDS.items():
            key = f"{{{DJI_NAMESPACE}}}{tag}"
            value = element.attrib.get(key, element.text if element.tag == key else None)
            if value is not None and found[name] is None:
                found[name] = _number(value.strip())
    return found
