"""Google's Street View Static API: metadata first (free, says whether and where a panorama
exists), then the images.

- ``GET {base}/streetview/metadata?location=LAT,LNG&radius=R&source=outdoor&key=K`` answers
  ``{"status": "OK" | "ZERO_RESULTS" | ..., "pano_id", "location": {"lat", "lng"}, "date"}``;
- ``GET {base}/streetview?pano=ID&size=WxH&heading=H&fov=90&pitch=0&key=K`` answers an image.

The Static API returns perspective views, not 360-degree panoramas, so a panorama is assembled
from four 90-degree views at headings 0, 90, 180, 270 (first column = north). The API has no
area search: a footprint is probed on a grid of points, and panoramas are de-duplicated by id.
"""

from __future__ import annotations

import numpy as np

from geobridge.builder.providers.base import Panorama, PanoramaSearch, ProviderError
from geobridge.builder.providers.http import HttpClient
from geobridge.builder.providers.images import decode_rgb
from geobridge.builder.providers.keys import key_from_env
from geobridge.geo import Footprint, offset_latlon

DEFAULT_BASE_URL = "https://maps.googleapis.com/maps/api"


class GoogleStreetView:
    """Panoramas from the Street View Static API (key from the environment variable ``key_env``)."""

    name = "google-streetview"

    def __init__(
        self,
        client: HttpClient,
        key_env: str = "GOOGLE_MAPS_API_KEY",
        base_url: str = DEFAULT_BASE_URL,
        grid_m: float = 50.0,
        radius_m: float = 50.0,
        view_px: int = 256,
    ):
        self.client = client
        self.key = key_from_env(key_env, "Google Street View")
        self.base_url = base_url.rstrip("/")
        self.grid_m = grid_m
        self.radius_m = radius_m
        self.view_px = view_px

    def _probe_points(self, footprint: Footprint) -> list[tuple[float, float]]:
        nx = max(1, int(round(footprint.width_m / self.grid_m)))
        ny = max(1, int(round(footprint.height_m / self.grid_m)))
        lat_c, lon_c = footprint.centre
        points = []
        for i in range(ny):
            for j in range(nx):
                east = (j + 0.5) * footprint.width_m / nx - footprint.width_m / 2
                north = (i + 0.5) * footprint.height_m / ny - footprint.height_m / 2
                lat, lon = offset_latlon(lat_c, lon_c, east, north)
                points.append((float(lat), float(lon)))
        return points

    def search(self, footprint: Footprint) -> PanoramaSearch:
        out = PanoramaSearch()
        seen: set[str] = set()
        for lat, lon in self._probe_points(footprint):
            params = {
                "location": f"{lat:.7f},{lon:.7f}",
                "radius": int(self.radius_m),
                "source": "outdoor",
                "key": self.key,
            }
            try:
                meta = self.client.get_json(f"{self.base_url}/streetview/metadata", params=params)
            except ProviderError as err:
                out.skipped.append(f"Street View metadata at ({lat:.6f}, {lon:.6f}): {err}")
                continue
            status = meta.get("status") if isinstance(meta, dict) else None
            if status == "ZERO_RESULTS":
                continue
            if status != "OK":
                out.skipped.append(f"Street View metadata at ({lat:.6f}, {lon:.6f}): status {status!r}")
                continue
            try:
                pano_id = str(meta["pano_id"])
                p_lat, p_lon = float(meta["location"]["lat"]), float(meta["location"]["lng"])
            except (KeyError, TypeError, ValueError):
                out.skipped.append(f"Street View metadata at ({lat:.6f}, {lon:.6f}): malformed answer")
                continue
            if pano_id in seen or not footprint.contains(p_lat, p_lon):
                continue
            seen.add(pano_id)
            out.panoramas.append(Panorama(pano_id, p_lat, p_lon, 0.0, pano_id, self.name))
        return out

    def fetch_image(self, panorama: Panorama) -> bytes:
        import cv2

        views = []
        for heading in (0, 90, 180, 270):
            params = {
                "pano": panorama.source,
                "size": f"{self.view_px}x{self.view_px}",
                "heading": heading,
                "fov": 90,
                "pitch": 0,
                "key": self.key,
            }
            data = self.client.get(f"{self.base_url}/streetview", params=params, expect="image").body
            views.append(decode_rgb(data, what=f"Street View {panorama.id} heading {heading}"))
        strip = np.concatenate([v[:, :, ::-1] for v in views], axis=1)
        ok, encoded = cv2.imencode(".png", strip)
        if not ok:
            raise ProviderError(f"cannot encode panorama {panorama.id}")
        return encoded.tobytes()
