"""The views a location can be seen from, and the direction names used in reports.

Directions follow the field's convention: one letter per view, query first, e.g. ``D2S`` is a
drone query searched among satellite references, ``T2P`` a text query among street panoramas.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class View(str, Enum):
    """A modality of a location. Its value is the folder and manifest column name."""

    DRONE = "drone"
    STREET = "street"
    SATELLITE = "satellite"
    MAP = "map"
    GROUND = "ground"
    TEXT = "text"

    @property
    def letter(self) -> str:
        """The one-letter code used in direction names (street panoramas are ``P``)."""
        return _LETTER_OF[self]

    @property
    def is_image(self) -> bool:
        return self is not View.TEXT

    @classmethod
    def parse(cls, value: str | View) -> View:
        """Parse a view name (``drone``), or its letter (``D``); a clear error otherwise."""
        if isinstance(value, View):
            return value
        text = str(value).strip()
        for view in cls:
            if text.lower() == view.value:
                return view
        if text.upper() in _VIEW_OF_LETTER:
            return _VIEW_OF_LETTER[text.upper()]
        names = ", ".join(v.value for v in cls)
        raise ValueError(f"unknown view {value!r}: expected one of {names}")


_LETTER_OF = {
    View.DRONE: "D",
    View.STREET: "P",
    View.SATELLITE: "S",
    View.MAP: "M",
    View.GROUND: "G",
    View.TEXT: "T",
}
_VIEW_OF_LETTER = {letter: view for view, letter in _LETTER_OF.items()}

#: Image views, in the order used by folders and reports.
IMAGE_VIEWS: tuple[View, ...] = (View.DRONE, View.STREET, View.SATELLITE, View.MAP, View.GROUND)

#: The three views of a GeoLoc triple.
GEOLOC_VIEWS: tuple[View, ...] = (View.DRONE, View.STREET, View.SATELLITE)


@dataclass(frozen=True)
class Direction:
    """A retrieval direction: queries of one view searched among references of another."""

    query: View
    gallery: View

    @property
    def name(self) -> str:
        return f"{self.query.letter}2{self.gallery.letter}"

    @property
    def views(self) -> tuple[View, ...]:
        """Every view the direction needs a tower for."""
        return (self.query, self.gallery)

    @property
    def reverse_name(self) -> str:
        """The name of the reverse direction (``S2D`` for ``D2S``), for a protocol that scores it
        from the same pair (``geotext``)."""
        return f"{self.gallery.letter}2{self.query.letter}"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.name

    @classmethod
    def parse(cls, value: str | Direction) -> Direction:
        """Parse ``D2S`` (letters) or ``drone2satellite`` / ``drone->satellite`` (names)."""
        if isinstance(value, Direction):
            return value
        text = str(value).strip()
        for sep in ("->", "2"):
            if sep in text:
                left, _, right = text.partition(sep)
                try:
                    query, gallery = View.parse(left), View.parse(right)
                except ValueError as err:
                    raise ValueError(f"bad direction {value!r}: {err}") from None
                if gallery is View.TEXT:
                    raise ValueError(f"bad direction {value!r}: text can be a query, not a gallery")
                if query is gallery:
                    raise ValueError(f"bad direction {value!r}: query and gallery views are the same")
                return cls(query, gallery)
        raise ValueError(f"bad direction {value!r}: expected e.g. D2S, P2D, T2S")


@dataclass(frozen=True)
class PooledDirection:
    """Queries of one view searched in ONE gallery pooling several image views, named
    ``<query letter>2I`` (e.g. ``T2I``: GeoText-1652's official test, every text against every
    test image of every view). Each gallery view is embedded with its own tower and the parts
    are concatenated (``Benchmark.gallery_parts``). A protocol may score the reverse direction
    from the same pair too (``geotext`` reports image -> text as well, named ``I2T``)."""

    query: View
    pooled: tuple[View, ...]

    @property
    def name(self) -> str:
        return f"{self.query.letter}2I"

    @property
    def reverse_name(self) -> str:
        """The name of the reverse direction (``I2T``), when a protocol scores it too."""
        return f"I2{self.query.letter}"

    @property
    def views(self) -> tuple[View, ...]:
        return (self.query, *self.pooled)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.name


#: A benchmark's direction: one query view against one gallery view, or against a pooled gallery.
AnyDirection = Direction | PooledDirection

#: GeoBridge's six image directions plus text to each view, in the paper's order.
GEOBRIDGE_DIRECTIONS: tuple[Direction, ...] = tuple(
    Direction.parse(name) for name in ("D2S", "S2D", "D2P", "P2D", "P2S", "S2P", "T2D", "T2P", "T2S")
)


def all_directions(views: list[View] | tuple[View, ...]) -> list[Direction]:
    """Every direction among the given image views, plus text to each when text is present."""
    images = [v for v in views if v.is_image]
    out = [Direction(q, g) for q in images for g in images if q is not g]
    if View.TEXT in views:
        out += [Direction(View.TEXT, g) for g in images]
    return out


def parse_directions(
    spec: str, views: list[View] | tuple[View, ...] = GEOLOC_VIEWS + (View.TEXT,)
) -> list[Direction]:
    """Parse ``"D2S,S2D"`` or ``"all"`` (every direction among ``views``)."""
    if spec.strip().lower() == "all":
        return all_directions(list(views))
    return [Direction.parse(part) for part in spec.split(",") if part.strip()]
