"""Stage 2: panoramas inside seed footprints, and reverse crops of the orthomosaic around them.

A panorama is kept when its position lies inside a seed's ground footprint (the first such seed
owns it). For each kept panorama the orthomosaic is cropped, centred on the panorama's position,
at every configured ground size (GeoLoc: 80, 100, 120, 150, 180 m), resampled to one pixel size,
north-up, through windowed reads. A crop that leaves the raster or holds too much nodata is
skipped with its reason; the other scales of that panorama still go on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from geobridge.builder.orthomosaic import CropError, Orthomosaic
from geobridge.builder.providers.base import Panorama
from geobridge.builder.seeds import Seed
from geobridge.geo import Footprint

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_id(text: str) -> str:
    """A file-name-safe form of a provider's id."""
    return _UNSAFE.sub("_", str(text)).strip("._") or "x"


def crop_id(pano_id: str, scale_m: float) -> str:
    """The location id of one crop: the panorama's id and the crop's ground size."""
    return f"{safe_id(pano_id)}-{scale_m:g}m"


@dataclass(frozen=True)
class KeptPanorama:
    """A panorama inside a seed footprint, with the seed that owns it."""

    panorama: Panorama
    seed: Seed


@dataclass
class PanoramaSelection:
    kept: list[KeptPanorama] = field(default_factory=list)
    outside: list[Panorama] = field(default_factory=list)


def keep_inside(
    panoramas: list[Panorama], seeds: list[Seed], listed: Sequence[Panorama] = ()
) -> PanoramaSelection:
    """Panoramas lying inside some seed footprint (each kept once, owned by its first seed); the
    others, and those of ``listed`` (a catalogue's whole list) that no search found, are outside."""
    out = PanoramaSelection()
    seen: set[str] = set()
    for pano in panoramas:
        if pano.id in seen:
            continue
        owner = next((s for s in seeds if s.footprint.contains(pano.lat, pano.lon)), None)
        if owner is None:
            out.outside.append(pano)
            continue
        seen.add(pano.id)
        out.kept.append(KeptPanorama(pano, owner))
    found = {p.id for p in panoramas}
    out.outside += [p for p in listed if p.id not in found]
    return out


def outside_reason(pano: Panorama) -> str:
    """Why a panorama gave no crop: where it is, and what to do."""
    return (
        f"outside footprints: at ({pano.lat:.6f}, {pano.lon:.6f}) it lies in no seed footprint of any "
        "orthomosaic; add an orthomosaic covering it, or check its coordinates"
    )


def reverse_crops(
    ortho: Orthomosaic,
    kept: KeptPanorama,
    scales_m: list[float],
    size_px: int,
    max_nodata_fraction: float,
    out_dir: Path,
) -> list[dict]:
    """Crop ``ortho`` around one panorama at every scale; one record per scale (ok or skipped)."""
    from PIL import Image

    from geobridge.atomic import atomic_path

    pano = kept.panorama
    records = []
    for scale in scales_m:
        cid = crop_id(pano.id, scale)
        fp = Footprint.around(pano.lat, pano.lon, scale)
        record = {
            "id": cid,
            "pano_id": pano.id,
            "lat": pano.lat,
            "lon": pano.lon,
            "heading": pano.heading_deg,
            "pano_source": pano.source,
            "provider": pano.provider,
            "seed_id": kept.seed.id,
            "orthomosaic": str(ortho.path),
            "gsd_m": ortho.gsd_m,
            "scale_m": float(scale),
            "footprint": [fp.west, fp.south, fp.east, fp.north],
            "path": None,
            "status": "ok",
            "reason": "",
        }
        try:
            crop = ortho.crop(pano.lat, pano.lon, scale, size_px, max_nodata_fraction)
        except CropError as err:
            record.update(status="skipped", reason=str(err))
            records.append(record)
            continue
        target = out_dir / f"{cid}.png"
        with atomic_path(target) as tmp:
            Image.fromarray(crop.image).save(
                tmp, format="PNG", compress_level=1
            )  # fast zlib level: encoding dominated stage 2
        record.update(path=str(target), nodata_fraction=crop.nodata_fraction)
        records.append(record)
    return records
