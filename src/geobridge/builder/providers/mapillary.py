"""Mapillary's Graph API (open street-level imagery; 360-degree panoramas are flagged).

``GET {base}/images?bbox=W,S,E,N&is_pano=true&fields=id,geometry,is_pano,compass_angle,thumb_2048_url&limit=L``
with the header ``Authorization: OAuth <token>`` answers
``{"data": [{"id", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "is_pano",
"compass_angle", "thumb_2048_url"}, ...]}``; the image is then fetched from ``thumb_2048_url``.
The token is sent in a header, so it never appears in a URL.
"""

from __future__ import annotations

from geobridge.builder.providers.base import Panorama, PanoramaSearch, ProviderError
from geobridge.builder.providers.http import HttpClient
from geobridge.builder.providers.keys import key_from_env
from geobridge.geo import Footprint

DEFAULT_BASE_URL = "https://graph.mapillary.com"
FIELDS = "id,geometry,is_pano,compass_angle,thumb_2048_url"


class Mapillary:
    """Panoramas from Mapillary (token from the environment variable ``key_env``)."""

    name = "mapillary"

    def __init__(
        self,
        client: HttpClient,
        key_env: str = "MAPILLARY_TOKEN",
        base_url: str = DEFAULT_BASE_URL,
        limit: int = 500,
    ):
        self.client = client
        self._headers = {"Authorization": f"OAuth {key_from_env(key_env, 'Mapillary')}"}
        self.base_url = base_url.rstrip("/")
        self.limit = limit

    def search(self, footprint: Footprint) -> PanoramaSearch:
        out = PanoramaSearch()
        params = {
            "bbox": f"{footprint.west:.7f},{footprint.south:.7f},{footprint.east:.7f},{footprint.north:.7f}",
            "is_pano": "true",
            "fields": FIELDS,
            "limit": self.limit,
        }
        answer = self.client.get_json(f"{self.base_url}/images", params=params, headers=self._headers)
        items = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ProviderError("Mapillary answer has no 'data' list")
        for number, item in enumerate(items):
            try:
                lon, lat = (float(v) for v in item["geometry"]["coordinates"][:2])
                pano_id, url = str(item["id"]), str(item["thumb_2048_url"])
            except (KeyError, TypeError, ValueError):
                out.skipped.append(f"Mapillary result {number}: missing id, coordinates or thumb_2048_url")
                continue
            if item.get("is_pano") is not True:
                out.skipped.append(f"Mapillary image {pano_id}: not a panorama (is_pano is false)")
                continue
            if footprint.contains(lat, lon):
                heading = item.get("compass_angle")
                heading = float(heading) % 360.0 if isinstance(heading, (int, float)) else 0.0
                out.panoramas.append(Panorama(pano_id, lat, lon, heading, url, self.name))
        return out

    def fetch_image(self, panorama: Panorama) -> bytes:
        return self.client.get(panorama.source, expect="image").body
