"""OpenAerialMap's catalogue: find UAV orthomosaics by bounding box and download them.

The catalogue API answers ``GET {base}/meta?bbox=W,S,E,N&limit=L&page=P`` with
``{"meta": {"found": N, ...}, "results": [{"_id", "uuid" (the GeoTIFF's URL), "title",
"bbox": [W, S, E, N], "gsd", "platform", "acquisition_start", "provider",
"properties": {"thumbnail", "tms", ...}}, ...]}``. Results without a usable URL or bbox are
skipped with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_write_bytes
from geobridge.builder.providers.base import ProviderError
from geobridge.builder.providers.http import HttpClient
from geobridge.builder.providers.images import describe_non_image, image_kind
from geobridge.geo import Footprint

DEFAULT_BASE_URL = "https://api.openaerialmap.org"


@dataclass(frozen=True)
class OrthomosaicRecord:
    """One catalogue entry: an orthomosaic's URL, extent and resolution."""

    id: str
    url: str
    footprint: Footprint
    gsd_m: float | None
    title: str
    platform: str
    thumbnail: str | None = None


@dataclass
class CatalogueSearch:
    records: list[OrthomosaicRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class OpenAerialMapCatalogue:
    """Search the OpenAerialMap catalogue (``base_url`` configurable for mirrors and tests)."""

    name = "openaerialmap"

    def __init__(
        self, client: HttpClient, base_url: str = DEFAULT_BASE_URL, page_size: int = 100, max_pages: int = 20
    ):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.max_pages = max_pages

    def search(self, footprint: Footprint, platform: str | None = "uav") -> CatalogueSearch:
        """Orthomosaics intersecting ``footprint`` (only ``platform`` ones when given), all pages."""
        out = CatalogueSearch()
        bbox = f"{footprint.west},{footprint.south},{footprint.east},{footprint.north}"
        for page in range(1, self.max_pages + 1):
            params = {"bbox": bbox, "limit": self.page_size, "page": page}
            if platform:
                params["platform"] = platform
            answer = self.client.get_json(f"{self.base_url}/meta", params=params)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list):
                raise ProviderError("OpenAerialMap answer has no 'results' list")
            for number, item in enumerate(results):
                record, problem = _parse_result(item)
                if record is None:
                    out.skipped.append(f"OpenAerialMap page {page} result {number}: {problem}")
                elif platform and record.platform and record.platform != platform:
                    continue
                else:
                    out.records.append(record)
            found = (answer.get("meta") or {}).get("found")
            if len(results) < self.page_size or (isinstance(found, int) and page * self.page_size >= found):
                break
        return out

    def download(self, record: OrthomosaicRecord, target: str | Path) -> Path:
        """Download the GeoTIFF to ``target`` (atomically); refuses anything that is not a TIFF."""
        response = self.client.get(record.url)
        if image_kind(response.body) != "tiff":
            raise ProviderError(
                f"orthomosaic {record.id}: download is not a GeoTIFF: "
                f"{describe_non_image(response.body, response.content_type)}"
            )
        return atomic_write_bytes(target, response.body)


def _parse_result(item) -> tuple[OrthomosaicRecord | None, str]:
    if not isinstance(item, dict):
        return None, "not an object"
    url = item.get("uuid")
    bbox: Any = item.get("bbox")  # any JSON value: the unpacking below checks it
    if not isinstance(url, str) or not url:
        return None, "no 'uuid' (image URL)"
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None, f"unusable bbox {bbox!r}"
    if not (w < e and s < n):
        return None, f"empty bbox {bbox!r}"
    gsd = item.get("gsd")
    props = item.get("properties") or {}
    return (
        OrthomosaicRecord(
            id=str(item.get("_id") or url.rsplit("/", 1)[-1]),
            url=url,
            footprint=Footprint(west=w, south=s, east=e, north=n),
            gsd_m=float(gsd) if isinstance(gsd, (int, float)) else None,
            title=str(item.get("title") or ""),
            platform=str(item.get("platform") or ""),
            thumbnail=props.get("thumbnail") if isinstance(props, dict) else None,
        ),
        "",
    )
