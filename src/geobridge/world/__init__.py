"""The embedded world: a geo-referenced raster scene (procedural or from OpenStreetMap) from
which every view of a location is rendered and its shared text is described.

Import the parts from their modules (``geobridge.world.model``, ``.sources_procedural``,
``.sources_osm``, ``.describe``, ``.sampling``, ``.dataset``, ``.render``); this package only
re-exports the world model, so importing it stays cheap and free of cycles.
"""

from geobridge.world.model import GeoReference, LandCover, NamedFeature, RoadClass, World

__all__ = ["GeoReference", "LandCover", "NamedFeature", "RoadClass", "World"]
