"""The raster world model: what is on the ground at every cell of a geo-referenced grid.

A :class:`World` is a set of aligned ``(H, W)`` rasters (land cover, height, surface colour,
building ids, road classes, regions) plus named features and a :class:`GeoReference` that gives
every cell a latitude and longitude. Every view (satellite, drone, street, map) is rendered from
the same world and the location text is described from it, so all of them agree by construction.

Conventions: row 0 is the northern edge and rows grow southwards; column 0 is the western edge
and columns grow eastwards. Cell ``(r, c)`` covers ``[r, r+1) x [c, c+1)`` in cell units; its
centre is ``(r + 0.5, c + 0.5)``. The geo-reference origin is the north-west corner of cell (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from geobridge.geo import metres_per_degree


class LandCover(IntEnum):
    """Land-cover class of a cell."""

    GRASS = 0
    ROAD = 1
    BUILDING = 2
    WATER = 3
    PARK = 4
    TREE = 5
    BRIDGE = 6
    PAVED = 7
    BARE = 8


class RoadClass(IntEnum):
    """Road class of a cell (``World.road_class``)."""

    NONE = 0
    MAJOR = 1
    SECONDARY = 2
    RESIDENTIAL = 3
    FOOTWAY = 4


@dataclass(frozen=True)
class GeoReference:
    """Maps grid cells to metres and degrees.

    ``origin_lat``/``origin_lon`` is the north-west corner of cell (0, 0); cells are square,
    ``cell_size_m`` on a side. Metres are east/north of the origin (so ``north_m`` is negative
    inside the grid). The mapping is a local equirectangular projection about the origin,
    accurate to well under a metre over a few kilometres.
    """

    origin_lat: float
    origin_lon: float
    cell_size_m: float = 1.0

    @property
    def _per_degree(self) -> tuple[float, float]:
        return metres_per_degree(self.origin_lat)

    def cell_to_xy(self, row, col):
        """(row, col) in cells (floats allowed) -> (east_m, north_m) from the origin."""
        row = np.asarray(row, dtype=np.float64)
        col = np.asarray(col, dtype=np.float64)
        return _unwrap(col * self.cell_size_m), _unwrap(-row * self.cell_size_m)

    def xy_to_cell(self, east_m, north_m):
        """(east_m, north_m) from the origin -> (row, col) in cells (floats)."""
        east_m = np.asarray(east_m, dtype=np.float64)
        north_m = np.asarray(north_m, dtype=np.float64)
        return _unwrap(-north_m / self.cell_size_m), _unwrap(east_m / self.cell_size_m)

    def cell_to_latlon(self, row, col):
        """(row, col) in cells -> (lat, lon) degrees; vectorised."""
        east, north = self.cell_to_xy(row, col)
        per_lat, per_lon = self._per_degree
        return _unwrap(self.origin_lat + np.asarray(north) / per_lat), _unwrap(
            self.origin_lon + np.asarray(east) / per_lon
        )

    def latlon_to_cell(self, lat, lon):
        """(lat, lon) degrees -> (row, col) in cells (floats); vectorised."""
        per_lat, per_lon = self._per_degree
        north = (np.asarray(lat, dtype=np.float64) - self.origin_lat) * per_lat
        east = (np.asarray(lon, dtype=np.float64) - self.origin_lon) * per_lon
        return self.xy_to_cell(east, north)


def _unwrap(value):
    """Return a Python float for 0-d results, the array otherwise."""
    arr = np.asarray(value)
    return float(arr) if arr.ndim == 0 else arr


@dataclass(frozen=True)
class NamedFeature:
    """A named thing in the world: a park, river, lake, square, street, landmark, bridge...

    ``row``/``col`` is its centre in cells (floats); ``radius_m`` its rough extent, used by the
    describer to decide whether a location is near it.
    """

    name: str
    kind: str
    row: float
    col: float
    radius_m: float


@dataclass
class World:
    """A geo-referenced raster scene from which every view of a location is rendered.

    Attributes:
        landcover: ``(H, W)`` uint8 :class:`LandCover`.
        height: ``(H, W)`` float32 metres above ground (buildings, trees; bridge deck height; 0 elsewhere).
        colour: ``(H, W, 3)`` uint8 surface colour seen from straight up (roof colour on buildings).
        building_id: ``(H, W)`` int32, 0 = no building; unique per building.
        road_class: ``(H, W)`` uint8 :class:`RoadClass` (0 none, 1 major, 2 secondary, 3 residential, 4 footway).
        region: ``(H, W)`` uint8 index into ``region_names``.
        region_names: names of the regions (e.g. ``"old-town"``).
        features: named features.
        georef: the grid's geo-reference.
        name: the world's name, e.g. ``"procedural-seed0"`` or ``"osm-Helsinki"``.
    """

    landcover: np.ndarray
    height: np.ndarray
    colour: np.ndarray
    building_id: np.ndarray
    road_class: np.ndarray
    region: np.ndarray
    region_names: list[str]
    features: list[NamedFeature]
    georef: GeoReference
    name: str
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        h, w = self.landcover.shape
        expected = {
            "height": (h, w),
            "colour": (h, w, 3),
            "building_id": (h, w),
            "road_class": (h, w),
            "region": (h, w),
        }
        for attr, shape in expected.items():
            actual = getattr(self, attr).shape
            if actual != shape:
                raise ValueError(f"World.{attr} has shape {actual}, expected {shape}")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return tuple(self.landcover.shape)

    @property
    def size_m(self) -> tuple[float, float]:
        """(height_m, width_m): the ground extent north-south and east-west."""
        h, w = self.shape
        return h * self.georef.cell_size_m, w * self.georef.cell_size_m

    @property
    def bounds(self) -> dict[str, float]:
        """The world's lat/lon box: ``{"west", "south", "east", "north"}``."""
        h, w = self.shape
        north, west = self.georef.cell_to_latlon(0.0, 0.0)
        south, east = self.georef.cell_to_latlon(float(h), float(w))
        return {"west": west, "south": south, "east": east, "north": north}

    def copy(self) -> World:
        """A deep copy of the rasters (features and georef are immutable and shared)."""
        return replace(
            self,
            landcover=self.landcover.copy(),
            height=self.height.copy(),
            colour=self.colour.copy(),
            building_id=self.building_id.copy(),
            road_class=self.road_class.copy(),
            region=self.region.copy(),
            region_names=list(self.region_names),
            features=list(self.features),
            metadata=dict(self.metadata),
        )

    def region_at(self, row: float, col: float) -> str:
        """The region name of the cell holding (row, col)."""
        r = int(np.clip(int(row), 0, self.shape[0] - 1))
        c = int(np.clip(int(col), 0, self.shape[1] - 1))
        return self.region_names[int(self.region[r, c])]
