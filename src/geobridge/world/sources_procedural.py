"""A procedural city: several regions with distinct styles, a river with bridges, parks, lakes,
buildings with heights and roof colours, and named features.

Every region has a :class:`RegionStyle` (street layout, road widths, roof palette, building form,
density and height, vegetation, water), so a split that holds one region out for testing is a
genuine cross-area split, like VIGOR's. The same ``seed`` always gives the same world.

How it is built, in order: regions (a warped Voronoi partition) -> streets per region (grid,
curved grid, or organic Voronoi edges) plus secondary roads on region borders and two major roads
across the whole world -> a meandering river and lakes (major and secondary roads cross water on
bridges, smaller streets stop) -> blocks (connected non-road land) become parks, squares or
building blocks -> buildings per block in the region's form -> trees -> colours -> names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from geobridge.world.model import GeoReference, LandCover, NamedFeature, RoadClass, World
from geobridge.world.surface import paint_surface, smooth_noise

#: Where the procedural world sits on Earth (north-west corner); an arbitrary temperate spot.
DEFAULT_ORIGIN = (47.3800, 8.5000)

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class RegionStyle:
    """How one region of the procedural city looks."""

    name: str
    layout: str  # "grid" | "curved" | "organic"
    block_m: float  # street spacing (grid) or mean block size (organic)
    street_width_m: float
    secondary_every: int  # every n-th grid line (or the coarse organic net) is a secondary road
    secondary_width_m: float
    building_form: str  # "perimeter" | "detached" | "tower" | "shed" | "slab"
    lot_m: tuple[float, float]  # lot size along / across the grid direction
    lot_gap_m: float  # free space between neighbouring buildings of one block
    setback_m: float  # distance from the street to the facade
    depth_m: float  # building depth for perimeter blocks
    height_m: tuple[float, float]  # building height range
    roof_palette: tuple[RGB, ...]
    park_fraction: float
    square_fraction: float
    tree_density: float  # trees per 100 m2 of garden / park
    open_ground: str  # "grass" | "paved" | "bare": what is left between buildings
    lake_probability: float


STYLES: tuple[RegionStyle, ...] = (
    RegionStyle(
        name="old-town",
        layout="organic",
        block_m=60.0,
        street_width_m=6.0,
        secondary_every=3,
        secondary_width_m=9.0,
        building_form="perimeter",
        lot_m=(12.0, 12.0),
        lot_gap_m=0.0,
        setback_m=0.0,
        depth_m=12.0,
        height_m=(9.0, 18.0),
        roof_palette=((176, 82, 58), (158, 68, 48), (192, 104, 72), (140, 58, 44), (170, 96, 66)),
        park_fraction=0.04,
        square_fraction=0.10,
        tree_density=0.4,
        open_ground="paved",
        lake_probability=0.0,
    ),
    RegionStyle(
        name="downtown",
        layout="grid",
        block_m=110.0,
        street_width_m=12.0,
        secondary_every=3,
        secondary_width_m=18.0,
        building_form="tower",
        lot_m=(44.0, 44.0),
        lot_gap_m=4.0,
        setback_m=3.0,
        depth_m=0.0,
        height_m=(30.0, 95.0),
        roof_palette=((92, 94, 100), (122, 122, 128), (72, 76, 82), (150, 150, 156), (104, 110, 124)),
        park_fraction=0.06,
        square_fraction=0.08,
        tree_density=0.3,
        open_ground="paved",
        lake_probability=0.0,
    ),
    RegionStyle(
        name="suburb",
        layout="curved",
        block_m=80.0,
        street_width_m=7.0,
        secondary_every=4,
        secondary_width_m=10.0,
        building_form="detached",
        lot_m=(22.0, 26.0),
        lot_gap_m=5.5,
        setback_m=6.0,
        depth_m=0.0,
        height_m=(5.0, 9.0),
        roof_palette=(
            (196, 196, 190),
            (112, 58, 48),
            (62, 70, 92),
            (150, 118, 88),
            (84, 100, 80),
            (60, 60, 64),
        ),
        park_fraction=0.08,
        square_fraction=0.0,
        tree_density=1.6,
        open_ground="grass",
        lake_probability=0.5,
    ),
    RegionStyle(
        name="industrial",
        layout="grid",
        block_m=170.0,
        street_width_m=14.0,
        secondary_every=2,
        secondary_width_m=18.0,
        building_form="shed",
        lot_m=(70.0, 50.0),
        lot_gap_m=8.0,
        setback_m=8.0,
        depth_m=0.0,
        height_m=(6.0, 14.0),
        roof_palette=((218, 218, 214), (192, 198, 204), (170, 176, 182), (116, 134, 152), (200, 190, 170)),
        park_fraction=0.02,
        square_fraction=0.0,
        tree_density=0.15,
        open_ground="bare",
        lake_probability=0.2,
    ),
    RegionStyle(
        name="garden-city",
        layout="organic",
        block_m=95.0,
        street_width_m=8.0,
        secondary_every=3,
        secondary_width_m=11.0,
        building_form="slab",
        lot_m=(38.0, 24.0),
        lot_gap_m=7.0,
        setback_m=8.0,
        depth_m=0.0,
        height_m=(12.0, 26.0),
        roof_palette=((104, 118, 92), (136, 104, 84), (168, 160, 140), (92, 96, 108)),
        park_fraction=0.22,
        square_fraction=0.02,
        tree_density=1.2,
        open_ground="grass",
        lake_probability=0.9,
    ),
)

MAJOR_ROAD_WIDTH_M = 16.0
BRIDGE_DECK_M = 6.0


def generate_procedural_world(
    seed: int,
    size_m: float = 1600,
    cell_size_m: float = 1.0,
    regions: int = 4,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
) -> World:
    """Generate a procedural city of ``size_m`` x ``size_m`` metres; same seed, same world.

    ``regions`` (1..len(STYLES) * n) regions get distinct styles, drawn without replacement
    from :data:`STYLES` while they last.
    """
    if size_m < 200:
        raise ValueError(f"size_m={size_m} is too small for a city: use at least 200 m")
    if regions < 1:
        raise ValueError(f"regions must be at least 1, got {regions}")
    rng = np.random.default_rng(seed)
    n = int(round(size_m / cell_size_m))
    shape = (n, n)
    cs = float(cell_size_m)
    ys = ((np.arange(n, dtype=np.float32) + 0.5) * cs)[:, None]  # metres southwards
    xs = ((np.arange(n, dtype=np.float32) + 0.5) * cs)[None, :]  # metres eastwards
    X = np.broadcast_to(xs, shape)
    Y = np.broadcast_to(ys, shape)

    styles, region_names = _pick_styles(rng, regions)
    region, border_dist = _regions(rng, X, Y, size_m, regions)

    road_class = np.zeros(shape, np.uint8)
    _region_streets(rng, X, Y, region, styles, road_class)
    # a secondary road runs along every region border (it overrides smaller streets there)
    border = (border_dist < 5.0) & ((road_class == RoadClass.NONE) | (road_class > RoadClass.SECONDARY))
    road_class[border] = RoadClass.SECONDARY
    del border, border_dist
    major_lines = _major_roads(rng, X, Y, size_m, road_class)

    water = np.zeros(shape, bool)
    river = _river(rng, X, Y, size_m, major_lines, water)
    river_water = water.copy()
    lakes = _lakes(rng, X, Y, region, styles, water, cs)

    landcover = np.full(shape, LandCover.GRASS, np.uint8)
    # major roads cross any water on bridges, secondary roads only the river; others stop
    bridge = (water & (road_class == RoadClass.MAJOR)) | (river_water & (road_class == RoadClass.SECONDARY))
    del river_water
    road_class[water & ~bridge] = RoadClass.NONE
    landcover[road_class > 0] = LandCover.ROAD
    landcover[water] = LandCover.WATER
    landcover[bridge] = LandCover.BRIDGE

    height = np.zeros(shape, np.float32)
    height[bridge] = BRIDGE_DECK_M
    building_id = np.zeros(shape, np.int32)

    land = landcover == LandCover.GRASS
    blocks, n_blocks = ndimage.label(land)
    block_region = _block_majority(blocks, n_blocks, region)
    block_area = np.bincount(blocks.ravel(), minlength=n_blocks + 1) * cs * cs
    use = _block_uses(rng, n_blocks, block_region, block_area, styles)  # 0 building, 1 park, 2 square
    use_map = np.concatenate([[-1], use]).astype(np.int8)[blocks]  # per cell; -1 = not a block
    landcover[use_map == 1] = LandCover.PARK
    landcover[use_map == 2] = LandCover.PAVED

    dist_edge = _distance_to_outside(blocks > 0) * cs
    dist_water = _distance_to_outside(~water) * cs
    roofs = _buildings(
        rng, X, Y, blocks, use_map, region, styles, dist_edge, dist_water, building_id, height, cs
    )
    landcover[building_id > 0] = LandCover.BUILDING
    for k, style in enumerate(styles):
        ground = (region == k) & (use_map == 0) & (building_id == 0)
        landcover[ground] = {"grass": LandCover.GRASS, "paved": LandCover.PAVED, "bare": LandCover.BARE}[
            style.open_ground
        ]
    _park_paths(rng, X, Y, landcover, road_class, use_map)
    landmarks, roofs = _landmarks(rng, blocks, n_blocks, use_map, building_id, height, roofs, landcover, cs)
    _trees(rng, landcover, height, region, styles, use_map, cs)

    colour = paint_surface(rng, landcover, road_class, building_id, roofs, height)
    names = _NameMaker(rng)
    features = _features(
        names, river, lakes, major_lines, blocks, n_blocks, use_map, block_area, landcover, landmarks, cs
    )

    georef = GeoReference(origin_lat=origin[0], origin_lon=origin[1], cell_size_m=cs)
    return World(
        landcover=landcover,
        height=height,
        colour=colour,
        building_id=building_id,
        road_class=road_class,
        region=region.astype(np.uint8),
        region_names=region_names,
        features=features,
        georef=georef,
        name=f"procedural-seed{seed}",
        metadata={
            "source": "procedural",
            "seed": int(seed),
            "size_m": float(size_m),
            "cell_size_m": cs,
            "regions": int(regions),
        },
    )


def _distance_to_outside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (cells, float32) of every True cell to the nearest False cell."""
    import cv2

    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _line_mask(
    line: _Line, X: np.ndarray, Y: np.ndarray, half_width: float, chunk_rows: int = 512
) -> np.ndarray:
    """Cells within ``half_width`` of ``line``, computed in row chunks to bound memory."""
    mask = np.zeros(X.shape, bool)
    for r0 in range(0, X.shape[0], chunk_rows):
        mask[r0 : r0 + chunk_rows] = (
            line.distance(X[r0 : r0 + chunk_rows], Y[r0 : r0 + chunk_rows]) < half_width
        )
    return mask


# --- regions -------------------------------------------------------------------------------


def _pick_styles(rng: np.random.Generator, regions: int) -> tuple[list[RegionStyle], list[str]]:
    styles: list[RegionStyle] = []
    names: list[str] = []
    while len(styles) < regions:
        for i in rng.permutation(len(STYLES)):
            if len(styles) == regions:
                break
            style = STYLES[int(i)]
            styles.append(style)
            count = sum(1 for s in styles if s.name == style.name)
            names.append(style.name if count == 1 else f"{style.name}-{count}")
    return styles, names


def _regions(rng, X, Y, size_m, regions):
    """Warped Voronoi partition: region index per cell and distance (m) to the nearest border."""
    rows = int(math.ceil(math.sqrt(regions)))
    cols = int(math.ceil(regions / rows))
    cells = [(r, c) for r in range(rows) for c in range(cols)][:regions]
    seeds = np.array(
        [
            (
                (c + 0.5 + rng.uniform(-0.2, 0.2)) * size_m / cols,
                (r + 0.5 + rng.uniform(-0.2, 0.2)) * size_m / rows,
            )
            for r, c in cells
        ],
        dtype=np.float32,
    )
    warp = size_m * 0.06  # borders wander by up to ~6 % of the world's side
    scale = max(4.0, X.shape[1] / 4.0)  # in cells: a few wiggles across the world
    wx = X + warp * smooth_noise(rng, X.shape, scale)
    wy = Y + warp * smooth_noise(rng, X.shape, scale)
    if regions == 1:
        return np.zeros(X.shape, np.uint8), np.full(X.shape, np.inf, np.float32)
    return _voronoi_edges(wx, wy, seeds)


def _voronoi_edges(px: np.ndarray, py: np.ndarray, seeds: np.ndarray, chunk_rows: int = 256):
    """Nearest seed index and distance to the nearest Voronoi edge for every cell (chunked)."""
    tree = cKDTree(seeds) if len(seeds) > 16 else None
    h, w = px.shape
    index = np.zeros((h, w), np.uint16 if len(seeds) > 255 else np.uint8)
    edge = np.zeros((h, w), np.float32)
    for r0 in range(0, h, chunk_rows):
        qx = np.asarray(px[r0 : r0 + chunk_rows], np.float32).ravel()
        qy = np.asarray(py[r0 : r0 + chunk_rows], np.float32).ravel()
        if tree is None:  # few seeds: direct distances are faster than a tree
            d2_all = (qx[:, None] - seeds[None, :, 0]) ** 2 + (qy[:, None] - seeds[None, :, 1]) ** 2
            idx = np.argsort(d2_all, axis=1, kind="stable")[:, :2]
            dist = np.sqrt(np.take_along_axis(d2_all, idx, axis=1))
        else:
            dist, idx = tree.query(np.stack([qx, qy], axis=1), k=2)
        d1, d2 = dist[:, 0], dist[:, 1]
        gap = np.linalg.norm(seeds[idx[:, 0]] - seeds[idx[:, 1]], axis=1)
        t = (d2 * d2 - d1 * d1) / np.maximum(2.0 * gap, 1e-6)
        n_rows = min(chunk_rows, h - r0)
        index[r0 : r0 + n_rows] = idx[:, 0].reshape(n_rows, w)
        edge[r0 : r0 + n_rows] = t.reshape(n_rows, w)
    return index, edge


# --- roads -----------------------------------------------------------------------------------


def _set_road(road_class: np.ndarray, mask: np.ndarray, cls: int) -> None:
    """Mark ``mask`` as road of class ``cls`` unless a more important class is already there."""
    current = road_class
    write = mask & ((current == 0) | (current > cls))
    current[write] = cls


def _grid_lines(
    coord: np.ndarray, spacing: float, every: int, width: float, width_secondary: float, offset: float
):
    """Cells within a grid line along ``coord``; returns (residential mask, secondary mask)."""
    shifted = coord / spacing + offset
    index = np.round(shifted)
    dist = np.abs(shifted - index) * spacing
    secondary = (np.mod(index, every) == 0) & (dist < width_secondary / 2)
    residential = dist < width / 2
    return residential, secondary


def _region_streets(rng, X, Y, region, styles, road_class):
    for k, style in enumerate(styles):
        inside = region == k
        if not inside.any():
            continue
        rows = np.nonzero(inside.any(axis=1))[0]
        cols = np.nonzero(inside.any(axis=0))[0]
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        x, y, mask = X[sl], Y[sl], inside[sl]
        if style.layout in ("grid", "curved"):
            angle = math.radians(rng.uniform(-35, 35))
            u = x * math.cos(angle) + y * math.sin(angle)
            v = -x * math.sin(angle) + y * math.cos(angle)
            if style.layout == "curved":
                amp, wave = style.block_m * 0.35, style.block_m * rng.uniform(3.5, 5.0)
                ph1, ph2 = rng.uniform(0, 2 * math.pi, size=2)
                u, v = (
                    u + amp * np.sin(2 * math.pi * v / wave + ph1),
                    v + amp * np.sin(2 * math.pi * u / wave + ph2),
                )
            spacing_v = style.block_m * rng.uniform(0.7, 1.0)  # rectangular blocks
            res_u, sec_u = _grid_lines(
                u,
                style.block_m,
                style.secondary_every,
                style.street_width_m,
                style.secondary_width_m,
                rng.uniform(),
            )
            res_v, sec_v = _grid_lines(
                v,
                spacing_v,
                style.secondary_every,
                style.street_width_m,
                style.secondary_width_m,
                rng.uniform(),
            )
            residential = res_u | res_v
            secondary = sec_u | sec_v
        else:
            warp = style.block_m * 0.12
            nx = smooth_noise(rng, x.shape, max(4.0, style.block_m / 2))
            ny = smooth_noise(rng, x.shape, max(4.0, style.block_m / 2))
            wx, wy = x + warp * nx, y + warp * ny
            residential = _organic_net(rng, wx, wy, style.block_m, style.street_width_m)
            secondary = _organic_net(
                rng, wx, wy, style.block_m * style.secondary_every, style.secondary_width_m
            )
        sub = road_class[sl]
        _set_road(sub, secondary & mask, RoadClass.SECONDARY)
        _set_road(sub, residential & mask, RoadClass.RESIDENTIAL)
    return road_class


def _organic_net(rng, x, y, spacing, width):
    """Organic streets: edges of a Voronoi diagram of jittered points ``spacing`` apart."""
    x0, x1 = float(x.min()) - spacing, float(x.max()) + spacing
    y0, y1 = float(y.min()) - spacing, float(y.max()) + spacing
    gx = np.arange(x0, x1, spacing)
    gy = np.arange(y0, y1, spacing)
    px, py = np.meshgrid(gx, gy)
    px = px + rng.uniform(-0.42, 0.42, px.shape) * spacing
    py = py + rng.uniform(-0.42, 0.42, py.shape) * spacing
    seeds = np.stack([px.ravel(), py.ravel()], axis=1).astype(np.float32)
    _, edge = _voronoi_edges(x, y, seeds)
    return edge < width / 2


@dataclass(frozen=True)
class _Line:
    """A gently curving line across the world: ``along`` is "x" (east-west) or "y" (north-south)."""

    along: str
    base: float
    amp: float
    wave: float
    phase: float
    width: float

    def offset(self, t: np.ndarray) -> np.ndarray:
        return (
            self.base
            + self.amp * np.sin(2 * math.pi * t / self.wave + self.phase)
            + 0.35 * self.amp * np.sin(2 * math.pi * t / (self.wave * 0.43) + 2.1 * self.phase)
        )

    def distance(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Approximate distance (m) of every cell to the line (perpendicular correction by slope)."""
        t, s = (X, Y) if self.along == "x" else (Y, X)
        centre = self.offset(t)
        slope = self.offset(t + 1.0) - centre
        return np.abs(s - centre) / np.sqrt(1.0 + slope * slope)

    def point(self, t: float) -> tuple[float, float]:
        """(x_m, y_m) of the line at parameter ``t``."""
        o = float(self.offset(np.asarray(t, np.float32)))
        return (t, o) if self.along == "x" else (o, t)


def _major_roads(rng, X, Y, size_m, road_class) -> list[_Line]:
    """One east-west and one north-south major road crossing the whole world."""
    lines = [
        _Line(
            "x",
            size_m * rng.uniform(0.3, 0.7),
            size_m * 0.04,
            size_m * rng.uniform(0.8, 1.4),
            rng.uniform(0, 6.28),
            MAJOR_ROAD_WIDTH_M,
        ),
        _Line(
            "y",
            size_m * rng.uniform(0.15, 0.3),
            size_m * 0.03,
            size_m * rng.uniform(0.8, 1.4),
            rng.uniform(0, 6.28),
            MAJOR_ROAD_WIDTH_M,
        ),
    ]
    if rng.uniform() < 0.5:  # put the north-south road on the east side half of the time
        lines[1] = _Line(
            "y", size_m - lines[1].base, lines[1].amp, lines[1].wave, lines[1].phase, lines[1].width
        )
    for line in lines:
        road_class[_line_mask(line, X, Y, line.width / 2)] = RoadClass.MAJOR
    return lines


def _river(rng, X, Y, size_m, major_lines, water) -> _Line:
    """A meandering river running north-south, away from the north-south major road."""
    ns_road = major_lines[1].base
    base = size_m - ns_road + rng.uniform(-0.05, 0.05) * size_m
    base = (
        float(np.clip(base, 0.3 * size_m, 0.7 * size_m))
        if abs(base - ns_road) > 0.25 * size_m
        else (0.7 * size_m if ns_road < size_m / 2 else 0.3 * size_m)
    )
    line = _Line(
        "y",
        base,
        size_m * rng.uniform(0.05, 0.08),
        size_m * rng.uniform(0.5, 0.8),
        rng.uniform(0, 6.28),
        rng.uniform(26, 40),
    )
    water |= _line_mask(line, X, Y, line.width / 2)
    return line


@dataclass(frozen=True)
class _Lake:
    x: float
    y: float
    radius: float


def _lakes(rng, X, Y, region, styles, water, cs) -> list[_Lake]:
    lakes: list[_Lake] = []
    for k, style in enumerate(styles):
        if rng.uniform() >= style.lake_probability:
            continue
        rr, cc = np.nonzero(region[::8, ::8] == k)
        if len(rr) == 0:
            continue
        # choose a spot deep inside the region and away from existing water
        pick = rng.integers(len(rr), size=12)
        best = None
        for p in pick:
            r, c = rr[p] * 8, cc[p] * 8
            margin = min(r, c, region.shape[0] - r, region.shape[1] - c) * cs
            score = margin + rng.uniform(0, 20)
            if not water[r, c] and (best is None or score > best[0]):
                best = (score, r, c)
        if best is None or best[0] < 120:
            continue
        _, r, c = best
        radius = rng.uniform(40, 75)
        x, y = (c + 0.5) * cs, (r + 0.5) * cs
        reach = int(np.ceil(radius * 1.4 / cs)) + 2
        win = (slice(max(r - reach, 0), r + reach), slice(max(c - reach, 0), c + reach))
        wx, wy = X[win], Y[win]
        angle = np.arctan2(wy - y, wx - x)
        ph = rng.uniform(0, 6.28, size=2)
        wobble = 1 + 0.18 * np.sin(2 * angle + ph[0]) + 0.1 * np.sin(3 * angle + ph[1])
        water[win] |= np.hypot(wx - x, (wy - y) * 1.3) < radius * wobble
        lakes.append(_Lake(x, y, radius))
    return lakes


# --- blocks and buildings --------------------------------------------------------------------


def _block_majority(blocks: np.ndarray, n_blocks: int, region: np.ndarray) -> np.ndarray:
    """Region index of each block (1..n_blocks -> index n-1), by majority of its cells."""
    n_regions = int(region.max()) + 1
    pair = blocks.astype(np.int64).ravel() * n_regions + region.ravel()
    counts = np.bincount(pair, minlength=(n_blocks + 1) * n_regions).reshape(n_blocks + 1, n_regions)
    return counts[1:].argmax(axis=1)


def _block_uses(rng, n_blocks, block_region, block_area, styles) -> np.ndarray:
    draw = rng.uniform(size=n_blocks)
    park_p = np.array([styles[k].park_fraction for k in block_region])
    square_p = np.array([styles[k].square_fraction for k in block_region])
    area = block_area[1:]
    use = np.zeros(n_blocks, np.int64)
    use[(draw < park_p) & (area > 600)] = 1
    use[(draw >= park_p) & (draw < park_p + square_p) & (area > 300) & (area < 6000)] = 2
    return use


def _buildings(rng, X, Y, blocks, use_map, region, styles, dist_edge, dist_water, building_id, height, cs):
    """Place buildings in building blocks; returns roof colour per building id (row 0 unused)."""
    shape = X.shape
    cand_rows, cand_cols, cand_keys = [], [], []
    for k, style in enumerate(styles):
        inside = (region == k) & (use_map == 0) & (dist_water > 8.0) & (dist_edge > style.setback_m)
        if not inside.any():
            continue
        rr, cc = (a.astype(np.int32) for a in np.nonzero(inside))
        del inside
        x = (cc.astype(np.float32) + 0.5) * cs
        y = (rr.astype(np.float32) + 0.5) * cs
        angle = math.radians(rng.uniform(0, 90))
        u = x * math.cos(angle) + y * math.sin(angle) + rng.uniform(0, style.lot_m[0])
        v = -x * math.sin(angle) + y * math.cos(angle) + rng.uniform(0, style.lot_m[1])
        lu, lv = np.floor(u / style.lot_m[0]), np.floor(v / style.lot_m[1])
        ou, ov = u - lu * style.lot_m[0], v - lv * style.lot_m[1]
        gap = style.lot_gap_m / 2
        mask = (ou >= gap) & (ou < style.lot_m[0] - gap) & (ov >= gap) & (ov < style.lot_m[1] - gap)
        if style.building_form == "perimeter":
            mask &= dist_edge[rr, cc] <= style.setback_m + style.depth_m
        lot_key = ((lu.astype(np.int64) + 100_000) * 200_003 + (lv.astype(np.int64) + 100_000)) * 64 + k
        cand_rows.append(rr[mask])
        cand_cols.append(cc[mask])
        cand_keys.append(lot_key[mask])
    cand_r = np.concatenate(cand_rows) if cand_rows else np.zeros(0, np.int64)
    cand_c = np.concatenate(cand_cols) if cand_cols else np.zeros(0, np.int64)
    keys = np.concatenate(cand_keys) if cand_keys else np.zeros(0, np.int64)
    candidate = np.zeros(shape, bool)
    candidate[cand_r, cand_c] = True
    if not len(cand_r):
        return np.zeros((1, 3), np.uint8)
    # one building = one (block, lot) pair, split further into connected pieces
    combined = blocks[cand_r, cand_c].astype(np.int64) * 1_000_003 + keys % 1_000_003
    _, lot_index = np.unique(combined, return_inverse=True)
    pieces, n_pieces = ndimage.label(candidate, structure=np.ones((3, 3)))
    # relabel by (lot, piece) so touching buildings of different lots stay apart
    joint = lot_index.astype(np.int64) * (n_pieces + 1) + pieces[cand_r, cand_c]
    del pieces
    _, inv2 = np.unique(joint, return_inverse=True)
    ids = np.zeros(shape, np.int32)
    ids[cand_r, cand_c] = inv2.astype(np.int32) + 1
    n_ids = int(ids.max())
    area = np.bincount(ids.ravel(), minlength=n_ids + 1) * cs * cs
    min_area = np.zeros(n_ids + 1)
    first_region = np.zeros(n_ids + 1, np.int64)
    first_region[ids[cand_r, cand_c]] = region[cand_r, cand_c]
    min_area[1:] = np.array(
        [30.0 if styles[k].building_form in ("perimeter", "detached") else 150.0 for k in first_region[1:]]
    )
    keep = area >= min_area
    keep[0] = False
    new_index = (np.cumsum(keep) * keep).astype(np.int32)
    ids = new_index[ids]
    kept_regions = first_region[keep]
    n_kept = int(keep.sum())
    building_id[:] = ids
    heights = np.zeros(n_kept + 1, np.float32)
    roofs = np.zeros((n_kept + 1, 3), np.uint8)
    draw = rng.uniform(size=n_kept)
    palette_pick = rng.uniform(size=n_kept)
    jitter = rng.integers(-10, 11, size=(n_kept, 3))
    for i, k in enumerate(kept_regions):
        style = styles[int(k)]
        lo, hi = style.height_m
        frac = draw[i] ** (2.0 if style.building_form == "tower" else 1.0)
        heights[i + 1] = round(lo + (hi - lo) * frac, 1)
        base = np.array(style.roof_palette[int(palette_pick[i] * len(style.roof_palette))])
        roofs[i + 1] = np.clip(base + jitter[i], 0, 255)
    built = ids > 0
    height[built] = heights[ids[built]]
    return roofs


def _park_paths(rng, X, Y, landcover, road_class, use_map) -> None:
    """Curving footways through parks."""
    rr, cc = np.nonzero(landcover == LandCover.PARK)
    if not len(rr):
        return
    x, y = X[rr, cc], Y[rr, cc]
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    wave = 9.0 * np.sin(v / 23.0)
    d1 = np.abs(np.mod(u + wave, 70.0) - 35.0)
    d2 = np.abs(np.mod(v + 7.0 * np.sin(u / 19.0), 90.0) - 45.0)
    on_path = (d1 < 1.2) | (d2 < 1.2)
    landcover[rr[on_path], cc[on_path]] = LandCover.ROAD
    road_class[rr[on_path], cc[on_path]] = RoadClass.FOOTWAY


@dataclass(frozen=True)
class _Landmark:
    kind: str
    row: float
    col: float
    radius_m: float


def _landmarks(
    rng: np.random.Generator,
    blocks: np.ndarray,
    n_blocks: int,
    use_map: np.ndarray,
    building_id: np.ndarray,
    height: np.ndarray,
    roofs: np.ndarray,
    landcover: np.ndarray,
    cs: float,
) -> tuple[list[_Landmark], np.ndarray]:
    """A church on one square (copper-green roof, 32 m) and the tallest building as a tower.

    Returns the landmarks and the roof table extended with the church's roof.
    """
    found: list[_Landmark] = []
    squares = np.nonzero(_uses(use_map, blocks, n_blocks) == 2)[0] + 1
    if len(squares):
        b = int(squares[rng.integers(len(squares))])
        rr, cc = np.nonzero(blocks == b)
        r0, c0 = int(rr.mean()), int(cc.mean())
        half = max(3, int(6 / cs))
        box = (slice(max(r0 - half, 0), r0 + half), slice(max(c0 - int(half * 1.6), 0), c0 + int(half * 1.6)))
        spot = blocks[box] == b
        if spot.sum() > 20:
            new_id = int(building_id.max()) + 1
            building_id[box][spot] = new_id
            height[box][spot] = 32.0
            landcover[box][spot] = LandCover.BUILDING
            roofs = np.vstack([roofs, np.array([[92, 132, 118]], np.uint8)])
            found.append(_Landmark("church", float(r0), float(c0), 25.0))
    if building_id.max() > 0:
        flat = np.argmax(np.where(landcover == LandCover.BUILDING, height, 0))
        r, c = np.unravel_index(flat, height.shape)
        if height[r, c] >= 40:
            found.append(_Landmark("tower", float(r), float(c), 30.0))
    return found, roofs


def _uses(use_map, blocks, n_blocks) -> np.ndarray:
    """Use of each block 1..n from the per-cell map."""
    out = np.full(n_blocks, -1, np.int64)
    mask = blocks > 0
    out[blocks[mask] - 1] = use_map[mask]
    return out


def _trees(rng, landcover, height, region, styles, use_map, cs) -> None:
    """Stamp round tree crowns on parks and gardens, density by region style."""
    h, w = landcover.shape
    open_land = (landcover == LandCover.PARK) | (landcover == LandCover.GRASS)
    density = np.array([s.tree_density for s in styles], np.float32)[region]
    density = np.where(landcover == LandCover.PARK, density * np.float32(1.5) + np.float32(0.3), density)
    prob = np.where(open_land, density * np.float32(cs * cs / 1200.0), np.float32(0.0))
    del density
    seeds = rng.random(size=(h, w), dtype=np.float32) < prob
    del prob
    rr, cc = np.nonzero(seeds)
    radii = rng.uniform(2.0, 5.0, size=len(rr)) / cs
    heights = rng.uniform(7.0, 17.0, size=len(rr)).astype(np.float32)
    tree = np.zeros((h, w), bool)
    crown_height = np.zeros((h, w), np.float32)
    for r, c, rad, th in zip(rr, cc, radii, heights):
        k = int(math.ceil(rad))
        r0, r1, c0, c1 = max(r - k, 0), min(r + k + 1, h), max(c - k, 0), min(c + k + 1, w)
        yy, xx = np.ogrid[r0 - r : r1 - r, c0 - c : c1 - c]
        disk = yy * yy + xx * xx <= rad * rad
        tree[r0:r1, c0:c1] |= disk
        # crown is highest in the middle
        dome = th * np.sqrt(np.clip(1 - (yy * yy + xx * xx) / (rad * rad + 1e-6), 0.3, 1.0))
        crown_height[r0:r1, c0:c1] = np.maximum(crown_height[r0:r1, c0:c1], np.where(disk, dome, 0))
    tree &= open_land
    landcover[tree] = LandCover.TREE
    height[tree] = crown_height[tree]


# --- names -----------------------------------------------------------------------------------

_PREFIXES = (
    "Ash",
    "Bel",
    "Cal",
    "Dun",
    "Elm",
    "Fen",
    "Gar",
    "Hal",
    "Ives",
    "Kel",
    "Lin",
    "Mar",
    "Nor",
    "Orm",
    "Pem",
    "Rav",
    "Sel",
    "Tor",
    "Val",
    "Wen",
    "Ald",
    "Bram",
    "Cor",
    "Dal",
    "Hart",
    "Lang",
    "Mill",
    "Oak",
)
_SUFFIXES = (
    "ford",
    "wick",
    "mere",
    "ton",
    "ley",
    "brook",
    "field",
    "stead",
    "holm",
    "by",
    "gate",
    "more",
    "dale",
    "well",
)
_MIDDLES = ("en", "er", "ing", "ow", "and", "ham", "is", "ock")
_SAINTS = ("Anne", "Mark", "Olaf", "Brigid", "Lucas", "Agnes", "Martin", "Clare")


class _NameMaker:
    """Unique, pronounceable place names drawn from a seeded generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def stem(self) -> str:
        for attempt in range(5000):
            name = _PREFIXES[self.rng.integers(len(_PREFIXES))] + _SUFFIXES[self.rng.integers(len(_SUFFIXES))]
            if attempt >= 200:  # the simple names are used up (big worlds): add a middle syllable
                name = (
                    name[: len(name) // 2]
                    + _MIDDLES[self.rng.integers(len(_MIDDLES))]
                    + name[len(name) // 2 :].lower()
                )
                name = name[0].upper() + name[1:].lower()
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of place names")


def _features(
    names, river, lakes, major_lines, blocks, n_blocks, use_map, block_area, landcover, landmarks, cs
) -> list[NamedFeature]:
    h, w = landcover.shape
    size_m = h * cs
    features: list[NamedFeature] = []

    def along(line: _Line, name: str, kind: str, step_m: float, radius_m: float) -> None:
        for t in np.arange(step_m / 2, size_m, step_m):
            x, y = line.point(float(t))
            if 0 <= x < w * cs and 0 <= y < h * cs:
                features.append(NamedFeature(name, kind, y / cs, x / cs, radius_m))

    along(river, f"{names.stem()} River", "river", 120.0, 90.0)
    for line, suffix in zip(major_lines, ("Road", "Avenue")):
        along(line, f"{names.stem()} {suffix}", "street", 100.0, 60.0)
    for lake in lakes:
        features.append(
            NamedFeature(f"Lake {names.stem()}", "lake", lake.y / cs, lake.x / cs, lake.radius * 1.2)
        )
    # parks and squares: one feature per block, centred on it
    uses = _uses(use_map, blocks, n_blocks)
    interesting = np.nonzero((uses == 1) | (uses == 2))[0] + 1
    if len(interesting):
        rr, cc = np.nonzero(np.isin(blocks, interesting))
        lab = blocks[rr, cc]
        count = np.bincount(lab, minlength=n_blocks + 1)
        mean_r = np.bincount(lab, weights=rr, minlength=n_blocks + 1)
        mean_c = np.bincount(lab, weights=cc, minlength=n_blocks + 1)
        for b in interesting:
            area = block_area[b]
            kind = "park" if uses[b - 1] == 1 else "square"
            if kind == "park" and area < 1500:
                continue
            label = f"{names.stem()} Park" if kind == "park" else f"{names.stem()} Square"
            features.append(
                NamedFeature(
                    label, kind, mean_r[b] / count[b], mean_c[b] / count[b], math.sqrt(area / math.pi) + 10
                )
            )
    # bridges: one feature per connected deck
    bridges, n_bridges = ndimage.label(landcover == LandCover.BRIDGE)
    for sl in ndimage.find_objects(bridges):
        if sl is None:
            continue
        r = (sl[0].start + sl[0].stop) / 2
        c = (sl[1].start + sl[1].stop) / 2
        features.append(NamedFeature(f"{names.stem()} Bridge", "bridge", r, c, 40.0))
    for mark in landmarks:
        if mark.kind == "church":
            saint = _SAINTS[names.rng.integers(len(_SAINTS))]
            label = f"St {saint}'s Church"
        else:
            label = f"{names.stem()} Tower"
        features.append(NamedFeature(label, mark.kind, mark.row, mark.col, mark.radius_m))
    return features
