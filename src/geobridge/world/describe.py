"""The describer: one view-invariant text per location, from the world's semantics nearby.

Two steps, both deterministic: :func:`scene_facts` measures what is within ``radius_m`` of a
location (the street it stands on and its junction, the street layout, water and bridges,
building density, height, form and roof colours, parks, trees, squares and named features,
with compass directions and distances), and :func:`phrase_facts` turns those facts into prose
with varied wording drawn from a seeded generator. Nothing in the text refers to how the place
is observed (no "photo", "from above", "in this view"...): the text is the semantic anchor all
views of a location are aligned to, so it must hold for every view. :data:`BANNED_WORDS` lists
the words that must never appear; tests check it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from geobridge.world.model import LandCover, RoadClass, World

#: Words that would tie a text to one way of observing the place; none may appear in a text.
BANNED_WORDS: tuple[str, ...] = (
    "photo",
    "photograph",
    "image",
    "view",
    "above",
    "aerial",
    "drone",
    "satellite",
    "panorama",
    "picture",
    "seen",
    "camera",
    "overhead",
    "visible",
    "shot",
    "map",
    "frame",
    "looking",
    "bird",
    "pixel",
    "tile",
    "top-down",
    "visible",
    "shown",
    "depicted",
    "overlooking",
)

#: A regular expression matching any banned word (whole words, any suffix).
BANNED_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in BANNED_WORDS) + r")\w*", re.IGNORECASE)

COMPASS = ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west")

ROOF_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (170, 66, 48),
    "terracotta": (196, 108, 74),
    "brown": (128, 94, 72),
    "dark grey": (72, 74, 80),
    "grey": (124, 124, 130),
    "light grey": (182, 184, 188),
    "white": (222, 222, 218),
    "blue-grey": (104, 118, 146),
    "green": (94, 128, 104),
    "beige": (200, 186, 160),
    "black": (44, 44, 48),
}

ROAD_WORDS = {
    RoadClass.MAJOR: "major road",
    RoadClass.SECONDARY: "secondary road",
    RoadClass.RESIDENTIAL: "side street",
    RoadClass.FOOTWAY: "footpath",
}


@dataclass(frozen=True)
class Mention:
    """A named feature near the location: name, kind, distance (m) and compass direction."""

    name: str
    kind: str
    distance_m: float
    direction: str


@dataclass
class SceneFacts:
    """What is around a location, measured from the world (no wording yet)."""

    road_class: int  # RoadClass at the location (0 when off-road)
    on_bridge: bool
    street_name: str | None
    branches: list[str]  # compass directions of the streets leaving the spot
    layout: str  # "grid" | "irregular" | "sparse"
    water_fraction: float
    water_direction: str | None
    water_name: str | None
    water_kind: str | None  # "river" | "lake" | None
    bridge_count: int
    building_fraction: float
    building_count: int
    median_height_m: float
    max_height_m: float
    median_footprint_m2: float
    roof_colours: list[str]
    park_fraction: float
    tree_fraction: float
    paved_fraction: float
    bare_fraction: float
    mentions: list[Mention] = field(default_factory=list)


def _compass(d_east: float, d_north: float) -> str:
    angle = (math.degrees(math.atan2(d_east, d_north)) + 360.0) % 360.0
    return COMPASS[int((angle + 22.5) // 45) % 8]


def _window(world: World, row: float, col: float, radius_cells: int):
    h, w = world.shape
    r, c = int(row), int(col)
    r0, r1 = max(r - radius_cells, 0), min(r + radius_cells + 1, h)
    c0, c1 = max(c - radius_cells, 0), min(c + radius_cells + 1, w)
    yy, xx = np.mgrid[r0:r1, c0:c1]
    disk = (yy + 0.5 - row) ** 2 + (xx + 0.5 - col) ** 2 <= radius_cells**2
    return (slice(r0, r1), slice(c0, c1)), disk, yy, xx


def _street_mask(landcover: np.ndarray, road_class: np.ndarray) -> np.ndarray:
    """Cells of drivable streets (major, secondary, residential; bridges included)."""
    on_road = (landcover == LandCover.ROAD) | (landcover == LandCover.BRIDGE)
    return on_road & (road_class >= RoadClass.MAJOR) & (road_class <= RoadClass.RESIDENTIAL)


def _branches(world: World, row: float, col: float, ring_m: float) -> list[str]:
    """Compass directions of the streets crossing a ring of ``ring_m`` around the spot."""
    cs = world.georef.cell_size_m
    n = 96
    angles = np.arange(n) * 2 * math.pi / n
    rr = np.clip((row - np.cos(angles) * ring_m / cs).astype(int), 0, world.shape[0] - 1)
    cc = np.clip((col + np.sin(angles) * ring_m / cs).astype(int), 0, world.shape[1] - 1)
    on = _street_mask(world.landcover[rr, cc], world.road_class[rr, cc])
    if on.all() or not on.any():
        return []
    start = int(np.argmin(on))  # rotate so the sequence starts off-road
    on = np.roll(on, -start)
    ang = np.roll(angles, -start)
    runs: list[list[float]] = []
    for i in range(n):
        if on[i] and (i == 0 or not on[i - 1]):
            runs.append([])
        if on[i]:
            runs[-1].append(ang[i])
    out = []
    for run in runs:
        if len(run) < 2:
            continue
        mean = math.atan2(np.mean(np.sin(run)), np.mean(np.cos(run)))
        out.append(_compass(math.sin(mean), math.cos(mean)))
    return out


#: Share of street-edge orientation (folded mod 90 degrees) within 15 degrees of the peak above
#: which the streets count as a grid.
GRID_CONCENTRATION = 0.5


def _layout(street: np.ndarray) -> str:
    """ "grid" when street edges run in two perpendicular directions, "irregular" otherwise."""
    if street.mean() < 0.04:
        return "sparse"
    from scipy import ndimage

    f = ndimage.gaussian_filter(street.astype(np.float32), 2.0)  # smooth away the pixel staircase
    gy, gx = np.gradient(f)
    mag = np.hypot(gx, gy)
    mask = mag > 0.05
    if mask.sum() < 20:
        return "irregular"
    theta = (np.degrees(np.arctan2(gy[mask], gx[mask])) + 180.0) % 90.0  # fold perpendicular edges together
    hist, _ = np.histogram(theta, bins=18, range=(0, 90), weights=mag[mask])
    hist = hist.astype(np.float64)
    peak = int(np.argmax(hist))
    mass = hist[[(peak - 1) % 18, peak, (peak + 1) % 18]].sum() / max(hist.sum(), 1e-9)
    return "grid" if mass > GRID_CONCENTRATION else "irregular"


def scene_facts(world: World, row: float, col: float, radius_m: float = 60.0) -> SceneFacts:
    """Measure the scene within ``radius_m`` of cell (row, col)."""
    # lat/lon round trips leave ~1e-9 cell noise; round it away so the same spot gives the same facts
    row, col = round(float(row), 4), round(float(col), 4)
    cs = world.georef.cell_size_m
    rad = max(2, int(round(radius_m / cs)))
    sl, disk, yy, xx = _window(world, row, col, rad)
    lc = world.landcover[sl]
    n = max(int(disk.sum()), 1)

    def frac(cls: LandCover) -> float:
        return float(((lc == cls) & disk).sum()) / n

    r, c = int(np.clip(row, 0, world.shape[0] - 1)), int(np.clip(col, 0, world.shape[1] - 1))
    here_class = (
        int(world.road_class[r, c]) if world.landcover[r, c] in (LandCover.ROAD, LandCover.BRIDGE) else 0
    )
    on_bridge = bool(world.landcover[r, c] == LandCover.BRIDGE)
    street = _street_mask(lc, world.road_class[sl])
    layout = _layout(street & disk)
    branches = _branches(world, row, col, ring_m=min(16.0, radius_m * 0.4))

    # water
    water = (lc == LandCover.WATER) & disk
    water_fraction = float(water.sum()) / n
    water_direction = None
    if water.any():
        wy, wx = yy[water].mean() + 0.5, xx[water].mean() + 0.5
        water_direction = _compass(wx - col, row - wy)
    bridges = (lc == LandCover.BRIDGE) & disk
    bridge_count = 0
    if bridges.any():
        from scipy import ndimage

        _, bridge_count = ndimage.label(bridges)

    # buildings
    bid = world.building_id[sl]
    inside = (bid > 0) & disk
    ids, counts = np.unique(bid[inside], return_counts=True)
    keep = counts * cs * cs >= 15.0  # ignore slivers cut by the circle
    ids = ids[keep]
    building_fraction = float(inside.sum()) / n
    heights = world.height[sl]
    colours = world.colour[sl]
    per_height: list[float] = []
    per_area: list[float] = []
    per_colour: list[np.ndarray] = []
    flat_bid = bid[inside]
    flat_h = heights[inside]
    flat_col = colours[inside].astype(np.float32)
    if len(ids):
        order = np.argsort(flat_bid, kind="stable")
        sb = flat_bid[order]
        starts = np.searchsorted(sb, ids)
        ends = np.searchsorted(sb, ids, side="right")
        for s, e in zip(starts, ends):
            sel = order[s:e]
            per_height.append(float(np.max(flat_h[sel])))
            per_area.append(float((e - s) * cs * cs))
            per_colour.append(flat_col[sel].mean(axis=0))
    roof_names = _name_colours(per_colour)

    mentions = _mentions(world, row, col, radius_m)
    street_name = next((m.name for m in mentions if m.kind == "street" and m.distance_m <= 30.0), None)
    water_mention = next((m for m in mentions if m.kind in WATER_KINDS), None)
    return SceneFacts(
        road_class=here_class,
        on_bridge=on_bridge,
        street_name=street_name,
        branches=branches,
        layout=layout,
        water_fraction=water_fraction,
        water_direction=water_direction,
        water_name=water_mention.name if (water_mention and water_fraction > 0) else None,
        water_kind=water_mention.kind if (water_mention and water_fraction > 0) else None,
        bridge_count=int(bridge_count),
        building_fraction=building_fraction,
        building_count=int(len(ids)),
        median_height_m=float(np.median(per_height)) if per_height else 0.0,
        max_height_m=float(np.max(per_height)) if per_height else 0.0,
        median_footprint_m2=float(np.median(per_area)) if per_area else 0.0,
        roof_colours=roof_names,
        park_fraction=frac(LandCover.PARK),
        tree_fraction=frac(LandCover.TREE),
        paved_fraction=frac(LandCover.PAVED),
        bare_fraction=frac(LandCover.BARE),
        mentions=mentions,
    )


def _name_colours(per_colour: list[np.ndarray]) -> list[str]:
    """The one or two most common roof colour names (by number of buildings)."""
    if not per_colour:
        return []
    names = list(ROOF_COLOURS)
    refs = np.array([ROOF_COLOURS[n] for n in names], np.float32)
    cols = np.stack(per_colour)
    nearest = np.argmin(((cols[:, None, :] - refs[None, :, :]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=len(names))
    ranked = np.argsort(-counts, kind="stable")
    out = [names[int(ranked[0])]]
    if len(ranked) > 1 and counts[ranked[1]] >= max(2, 0.3 * counts.sum()):
        out.append(names[int(ranked[1])])
    return out


def _mentions(world: World, row: float, col: float, radius_m: float) -> list[Mention]:
    """Named features whose extent reaches within ``radius_m`` of the spot, nearest first;
    one mention per name."""
    cs = world.georef.cell_size_m
    best: dict[str, Mention] = {}
    for f in world.features:
        d_east = (f.col - col) * cs
        d_north = (row - f.row) * cs
        dist = math.hypot(d_east, d_north)
        if dist > radius_m + f.radius_m:
            continue
        direction = _compass(d_east, d_north) if dist > 8 else "here"
        m = Mention(f.name, f.kind, dist, direction)
        if f.name not in best or dist < best[f.name].distance_m:
            best[f.name] = m
    return sorted(best.values(), key=lambda m: (m.distance_m, m.name))


# --- wording ---------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _metres(d: float) -> str:
    return f"{max(10, int(round(d / 10.0)) * 10)} m"


def _storeys(h: float) -> int:
    return max(1, int(round(h / 3.2)))


def _junction_sentence(f: SceneFacts, rng, compass: bool = True) -> str:
    kind = ROAD_WORDS.get(RoadClass(f.road_class), "street") if f.road_class else "street"
    named = f"{f.street_name}, a {kind}," if f.street_name else f"a {kind}"
    named_end = f"{f.street_name}, a {kind}" if f.street_name else f"a {kind}"  # at the end of a sentence
    nb = len(f.branches)
    if f.on_bridge:
        bridge = next((m.name for m in f.mentions if m.kind == "bridge" and m.distance_m <= 40.0), None)
        if bridge:
            return _pick(
                rng,
                [
                    f"On {bridge}, which carries {named} across the water.",
                    f"{bridge}: {named} crossing the water on a bridge.",
                ],
            )
        return _pick(
            rng,
            [
                f"A bridge carrying {named} across the water.",
                f"On a bridge deck where {named} crosses the water.",
            ],
        )
    if nb >= 5:
        return _pick(
            rng,
            [
                f"A busy junction where {nb} streets meet on {named_end}.",
                f"A complex intersection of {nb} streets on {named_end}.",
            ],
        )
    if nb == 4:
        dirs = f", with streets running {' and '.join(sorted(set(f.branches))[:2])}" if compass else ""
        return _pick(
            rng,
            [
                f"A crossroads on {named_end}{dirs}.",
                f"A four-way intersection on {named_end}.",
                f"Four streets meet at a crossing on {named_end}.",
            ],
        )
    if nb == 3:
        lead = f"; streets lead {', '.join(f.branches)}" if compass else ""
        branching = f", branching {', '.join(f.branches)}" if compass else ""
        return _pick(
            rng, [f"A T-junction on {named_end}{lead}.", f"A three-way junction on {named_end}{branching}."]
        )
    if nb == 2:
        a, b = f.branches
        straight = COMPASS.index(a) == (COMPASS.index(b) + 4) % 8
        if straight:
            if not compass:
                return _pick(
                    rng, [f"A straight stretch of {named_end}.", f"On {named_end}, which runs straight."]
                )
            return _pick(
                rng,
                [
                    f"A straight stretch of {named} running {a} to {b}.",
                    f"On {named_end}, which runs straight from {a} to {b}.",
                ],
            )
        if not compass:
            return _pick(
                rng, [f"A bend in {named_end}.", f"{named_end[0].upper() + named_end[1:]} curves here."]
            )
        return _pick(
            rng,
            [
                f"A bend in {named_end}, turning from {a} to {b}.",
                f"{named_end[0].upper() + named_end[1:]} curves here, from {a} towards {b}.",
            ],
        )
    if nb == 1:
        if not compass:
            return _pick(rng, [f"The end of {named_end}.", f"A dead end of {named_end}."])
        return _pick(
            rng,
            [
                f"The end of {named_end}, open to the {f.branches[0]}.",
                f"A dead end of {named} reached from the {f.branches[0]}.",
            ],
        )
    return _pick(rng, [f"A wide paved stretch of {named_end}.", f"An open stretch of {named_end}."])


def _layout_sentence(f: SceneFacts, rng) -> str | None:
    if f.layout == "grid":
        return _pick(
            rng,
            [
                "The streets form a regular grid of rectangular blocks.",
                "Streets here follow a straight, right-angled grid.",
                "The street network is a regular grid.",
            ],
        )
    if f.layout == "irregular":
        return _pick(
            rng,
            [
                "Streets wind irregularly between uneven blocks.",
                "The street pattern is irregular, with curving lanes and odd-shaped blocks.",
                "Curving streets meet at irregular angles.",
            ],
        )
    return None


#: Feature kinds that name a body of water.
WATER_KINDS = ("river", "lake", "sea", "canal", "pond", "bay", "water")

#: Water covering less than this share of the disk (a fountain, a ditch) is not mentioned.
WATER_MIN_FRACTION = 0.005


def _water_sentence(f: SceneFacts, rng, compass: bool = True) -> str | None:
    if f.water_fraction < WATER_MIN_FRACTION:
        return None
    direction = f.water_direction or ""  # used only with compass
    if compass:
        assert direction  # scene_facts sets it whenever there is water
    side = f"to the {direction}" if compass else "close by"
    share = (
        "a wide stretch of"
        if f.water_fraction > 0.25
        else ("some" if f.water_fraction > 0.08 else "a little")
    )
    if f.water_name:
        kind = f.water_kind or "water"
        titled = (
            f"The {kind} {f.water_name}"
            if kind in ("river", "lake", "bay", "canal") and kind not in f.water_name.lower()
            else f.water_name
        )
        base = _pick(
            rng,
            [
                f"{titled} lies {side}.",
                f"Open water, {f.water_name}, lies {'close by to the ' + direction if compass else 'close by'}.",
                f"{f.water_name} borders the area{' on its ' + direction + ' side' if compass else ''}.",
            ],
        )
    else:
        base = _pick(rng, [f"There is {share} open water {side}.", f"Water lies {side}."])
    if f.bridge_count:
        base += " " + _pick(
            rng,
            [
                f"{_count_word(f.bridge_count).capitalize()} bridge{'s' if f.bridge_count > 1 else ''} cross{'es' if f.bridge_count == 1 else ''} it nearby.",
                "A road bridge spans it."
                if f.bridge_count == 1
                else f"{_count_word(f.bridge_count).capitalize()} road bridges span it.",
            ],
        )
    return base


def _count_word(n: int) -> str:
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if n < len(words) else str(n)


def _building_sentence(f: SceneFacts, rng) -> str:
    if f.building_count == 0:
        return _pick(rng, ["There are no buildings close by.", "No buildings stand nearby."])
    if f.building_fraction > 0.35:
        density = _pick(rng, ["densely built", "tightly built up", "packed with buildings"])
    elif f.building_fraction > 0.15:
        density = _pick(rng, ["moderately built up", "fairly built up"])
    else:
        density = _pick(rng, ["sparsely built", "only lightly built up"])
    h, area = f.median_height_m, f.median_footprint_m2
    if h >= 25:
        form = _pick(
            rng,
            [
                f"high-rise blocks of about {_storeys(h)} storeys",
                f"tall buildings around {int(round(h, -1))} m high",
            ],
        )
    elif area > 1200 and h < 10:
        form = _pick(rng, ["large low halls with flat roofs", "big single-storey sheds and halls"])
    elif area > 1200:
        form = _pick(
            rng,
            [
                f"large blocks of about {_storeys(h)} storeys",
                f"big {_storeys(h)}-storey buildings filling their plots",
            ],
        )
    elif area < 260 and h < 10:
        form = _pick(
            rng, [f"small detached houses of {_storeys(h)} storeys", "small houses on separate plots"]
        )
    elif f.building_fraction > 0.3 and h < 22:
        form = _pick(
            rng,
            [
                f"continuous rows of {_storeys(h)}-storey buildings along the streets",
                f"terraced {_storeys(h)}-storey blocks lining the streets",
            ],
        )
    else:
        form = _pick(
            rng, [f"{_storeys(h)}-storey apartment blocks", f"mid-rise blocks about {int(round(h))} m tall"]
        )
    roofs = " and ".join(f.roof_colours)
    count = f.building_count
    s = _pick(
        rng,
        [
            f"The area is {density}: about {count} buildings, mostly {form}, with {roofs} roofs.",
            f"About {count} buildings stand here, {form}; roofs are mainly {roofs}. It is {density}.",
            f"It is {density}, with {form} ({count} buildings) under {roofs} roofs.",
        ],
    )
    if f.max_height_m >= 40 and f.max_height_m > 1.5 * max(h, 1):
        s += " " + _pick(
            rng,
            [
                f"One tower rises to about {int(round(f.max_height_m, -1))} m.",
                f"The tallest building reaches roughly {_storeys(f.max_height_m)} storeys.",
            ],
        )
    return s


def _green_sentence(f: SceneFacts, rng) -> str | None:
    parts = []
    if f.park_fraction > 0.05:
        parts.append(_pick(rng, ["a park with lawns and footpaths", "green park land"]))
    if f.tree_fraction > 0.08:
        parts.append(_pick(rng, ["many trees", "dense tree cover"]))
    elif f.tree_fraction > 0.015:
        parts.append(_pick(rng, ["scattered trees", "a few trees"]))
    if f.paved_fraction > 0.12:
        parts.append(_pick(rng, ["paved yards and open squares", "large paved areas"]))
    if f.bare_fraction > 0.12:
        parts.append(_pick(rng, ["bare unpaved yards", "open lots of bare ground"]))
    if not parts:
        return None
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return _pick(rng, [f"Around it: {joined}.", f"Nearby: {joined}.", f"The surroundings include {joined}."])


def _mention_sentence(f: SceneFacts, rng, already_named: str = "", compass: bool = True) -> str | None:
    items = []
    for m in f.mentions:
        if m.name in already_named:
            continue
        if m.kind in ("street", "river", "lake") and (m.name == f.street_name or m.name == f.water_name):
            continue
        if m.kind == "bridge" and m.distance_m > 80:
            continue
        where = (
            "right here"
            if m.direction == "here"
            else f"{_metres(m.distance_m)}" + (f" to the {m.direction}" if compass else " away")
        )
        items.append(f"{m.name} ({where})")
        if len(items) == 3:
            break
    if not items:
        return None
    joined = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return _pick(rng, [f"Close by: {joined}.", f"Also nearby: {joined}.", f"Nearby places: {joined}."])


def phrase_facts(facts: SceneFacts, rng: np.random.Generator, compass: bool = True) -> str:
    """Turn facts into a few sentences; the street sentence first, the rest in a seeded order.

    ``compass=False`` leaves out compass bearings (which way a street runs, on which side a park
    lies): only a north-up satellite tile shows them, while drone and street views look along a
    random heading. GeoBridge asks its LLM for cues every view shares; this is that text. The
    random draws are the same either way, so both texts of a location say the same things.
    """
    first = _junction_sentence(facts, rng, compass)
    rest = [
        s
        for s in (
            _layout_sentence(facts, rng),
            _water_sentence(facts, rng, compass),
            _building_sentence(facts, rng),
            _green_sentence(facts, rng),
            _mention_sentence(facts, rng, already_named=first, compass=compass),
        )
        if s
    ]
    order = rng.permutation(len(rest))
    text = " ".join([first] + [rest[i] for i in order])
    text = re.sub(r"\s+", " ", text).strip()
    return text


def describe_location(
    world: World,
    lat: float,
    lon: float,
    rng: np.random.Generator,
    radius_m: float = 60.0,
    compass: bool = True,
) -> str:
    """The location's text: facts within ``radius_m`` of (lat, lon), phrased with ``rng``
    (``compass=False``: without compass bearings, see :func:`phrase_facts`)."""
    row, col = world.georef.latlon_to_cell(lat, lon)
    return phrase_facts(scene_facts(world, float(row), float(col), radius_m), rng, compass)


def banned_words_in(text: str) -> list[str]:
    """The view-specific words found in ``text`` (empty when the text is clean)."""
    return [m.group(0) for m in BANNED_PATTERN.finditer(text)]
