"""Build the configured providers (the config's ``panoramas`` and ``satellite`` sections)."""

from __future__ import annotations

from pathlib import Path

from geobridge.builder.config import HttpSettings, PanoramaSource, SatelliteSource
from geobridge.builder.providers.base import PanoramaProvider, SatelliteProvider, TileSource
from geobridge.builder.providers.http import HttpClient


def make_panorama_provider(source: PanoramaSource, http: HttpSettings, cache_dir: Path) -> PanoramaProvider:
    """The panorama provider named by ``source.kind``."""
    if source.kind == "local":
        from geobridge.builder.providers.local import LocalPanoramaCatalogue

        assert source.catalogue is not None  # PanoramaSource's validator: kind=local needs a catalogue
        return LocalPanoramaCatalogue(source.catalogue)
    client = HttpClient(http, cache_dir=cache_dir)
    if source.kind == "google":
        from geobridge.builder.providers.google_streetview import DEFAULT_BASE_URL, GoogleStreetView

        return GoogleStreetView(
            client,
            key_env=source.key_env or "GOOGLE_MAPS_API_KEY",
            base_url=source.base_url or DEFAULT_BASE_URL,
            grid_m=source.grid_m,
            radius_m=source.radius_m,
            view_px=source.image_height_px,
        )
    from geobridge.builder.providers.mapillary import DEFAULT_BASE_URL, Mapillary

    return Mapillary(
        client, key_env=source.key_env or "MAPILLARY_TOKEN", base_url=source.base_url or DEFAULT_BASE_URL
    )


def make_satellite_provider(
    source: SatelliteSource, http: HttpSettings, cache_dir: Path
) -> SatelliteProvider:
    """A tile mosaic over the tile source named by ``source.kind``."""
    from geobridge.builder.providers.xyz import TileMosaicSatellite, XYZUrlTiles

    # SatelliteSource's validator: xyz-url has a url, xyz-dir and mbtiles a path
    tiles: TileSource
    if source.kind == "xyz-url":
        assert source.url is not None
        tiles = XYZUrlTiles(source.url, HttpClient(http, cache_dir=cache_dir))
    elif source.kind == "xyz-dir":
        from geobridge.builder.providers.local import XYZDirectory

        assert source.path is not None
        tiles = XYZDirectory(source.path, source.extension)
    else:
        from geobridge.builder.providers.local import MBTiles

        assert source.path is not None
        tiles = MBTiles(source.path)
    return TileMosaicSatellite(tiles, zoom=source.zoom, tile_size=source.tile_size)
