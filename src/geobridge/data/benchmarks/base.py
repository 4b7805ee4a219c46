"""What every benchmark loader returns: image sets per retrieval direction, training places,
and the error raised when a dataset is absent or incomplete.

A benchmark answers three questions for a retrieval direction (e.g. ``D2S``): which queries
(:meth:`Benchmark.query_set`), which references (:meth:`Benchmark.gallery_set`), and which
evaluation protocol the field uses on it (:attr:`Benchmark.default_protocol`, plus
:meth:`Benchmark.protocol_options`). Ids in an :class:`ImageSet` are the location or class
label: a query is matched with the gallery items that carry its id.

A benchmark with a training split also yields it as training places
(:meth:`Benchmark.training_places`: per place every image of every view it has) and as the items
of a training epoch (:meth:`Benchmark.training_locations`, see :mod:`geobridge.data.places`).
A file that a split lists but that is missing is skipped and counted, as the field's loaders do
(:meth:`Benchmark.existing`), rather than aborting the split.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from geobridge.data.places import TrainingPlace, expand_places
from geobridge.records import Location
from geobridge.views import AnyDirection, Direction, PooledDirection, View

LOGGER = logging.getLogger(__name__)

#: File suffixes treated as images when a loader scans a folder.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder is missing: the message names it and says what to do."""


@dataclass
class ImageSet:
    """The queries or the gallery of one direction: one item per image (or per text).

    ``ids`` hold the location or class label of each item (duplicates allowed, e.g. the 54
    drone images of one University-1652 building); ``paths`` are set for image views and
    ``texts`` for :attr:`View.TEXT`; ``lat``/``lon`` are degrees when the dataset knows them;
    ``extra`` carries per-item data a protocol needs (e.g. VIGOR's ``semi_positive_ids``).
    """

    view: View
    ids: list[str]
    paths: list[Path] | None = None
    texts: list[str] | None = None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        n = len(self.ids)
        if self.view is View.TEXT:
            if self.texts is None:
                raise ValueError("a text ImageSet needs texts")
        elif self.paths is None:
            raise ValueError(f"an ImageSet of view {self.view.value} needs image paths")
        for name in ("paths", "texts"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"ImageSet has {n} ids but {len(value)} {name}")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("ImageSet needs both lat and lon, or neither")
        if self.lat is not None:
            self.lat = np.asarray(self.lat, dtype=np.float64)
            self.lon = np.asarray(self.lon, dtype=np.float64)
            if self.lat.shape != (n,) or self.lon.shape != (n,):
                raise ValueError(f"ImageSet has {n} ids but lat/lon of shape {self.lat.shape}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_coordinates(self) -> bool:
        return self.lat is not None


class Benchmark(ABC):
    """A dataset in its released on-disk layout, exposed as retrieval directions.

    Subclasses set :attr:`name`, :attr:`default_protocol`, :attr:`homepage`, and check their
    layout in ``__init__`` so that a missing file is reported before any work starts.
    """

    name: ClassVar[str]
    #: Where to obtain the dataset; quoted in every "missing file" error.
    homepage: ClassVar[str]
    #: One-line summary of the layout, quoted in every "missing file" error.
    layout: ClassVar[str]
    default_protocol: str

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        #: listed files found missing and skipped, per kind (see :meth:`existing`)
        self.skipped_files: dict[str, int] = {}
        if not self.root.is_dir():
            raise self.missing(self.root, "dataset root folder")

    # -- the interface -------------------------------------------------------------------
    @abstractmethod
    def directions(self) -> Sequence[AnyDirection]:
        """The retrieval directions this benchmark defines, in its papers' order."""

    @abstractmethod
    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        """The queries of ``direction``."""

    @abstractmethod
    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        """The references searched by the queries of ``direction``."""

    def gallery_parts(self, direction: AnyDirection | str) -> list[ImageSet]:
        """The gallery of ``direction`` as image sets of one view each, embedded each with its
        view's tower and concatenated in this order. One part, the gallery set, except for a
        :class:`PooledDirection` (GeoText-1652's official all-views gallery)."""
        return [self.gallery_set(direction)]

    def protocol_options(
        self, direction: AnyDirection | str, query: ImageSet, gallery: ImageSet
    ) -> dict[str, Any]:
        """Keyword options for ``geobridge.evaluation.protocols.evaluate`` (none by default)."""
        return {}

    def training_places(self) -> list[TrainingPlace]:
        """The training split as places (every image of every view a place has); loaders whose
        dataset has a training split override it."""
        raise ValueError(f"{self.name} defines no training split")

    def training_locations(self, views: Sequence[View | str]) -> list[Location]:
        """The items of one training epoch over ``views`` (see :mod:`geobridge.data.places`);
        each item's ``region`` is this benchmark's name."""
        parsed = [View.parse(v) for v in views]
        items = expand_places(self.training_places(), parsed, source=self.name)
        if not items:
            raise ValueError(
                f"{self.name}: no training place under {self.root} has any of the views "
                f"{', '.join(v.value for v in parsed)}"
            )
        return items

    # -- helpers for subclasses ------------------------------------------------------------
    def check_direction(self, direction: AnyDirection | str) -> AnyDirection:
        """Parse ``direction`` (a pooled one by its name, ``T2I``, or its reverse's, ``I2T``) and
        check this benchmark defines it."""
        known = self.directions()
        if isinstance(direction, str):  # a pooled direction also answers to its reverse's name (I2T)
            pooled = {
                name.upper(): d
                for d in known
                if isinstance(d, PooledDirection)
                for name in (d.name, d.reverse_name)
            }
            if direction.strip().upper() in pooled:
                return pooled[direction.strip().upper()]
        if not isinstance(direction, PooledDirection):
            direction = Direction.parse(direction)
        if direction not in known:
            names = ", ".join(d.name for d in known)
            raise ValueError(f"{self.name} has no direction {direction.name}; it defines {names}")
        return direction

    def check_pair(self, direction: AnyDirection | str) -> Direction:
        """`check_direction` for a benchmark whose directions are all one query view against one
        gallery view (every one but GeoText-1652's official setting)."""
        checked = self.check_direction(direction)
        if isinstance(checked, PooledDirection):  # only GeoText-1652 defines one, and checks its own
            raise ValueError(f"{self.name}: {checked.name} pools several gallery views")
        return checked

    def missing(self, path: Path, what: str) -> DatasetNotFoundError:
        """The error for a missing file or folder: names it, says the layout and where to get it."""
        module = type(self).__module__
        return DatasetNotFoundError(
            f"{self.name}: {what} not found: {path}. Expected layout under {self.root}: {self.layout} "
            f"Get the dataset from {self.homepage} (the docstring of {module} has the full layout), "
            "or write a tiny one with geobridge.data.fixtures.write_fixture."
        )

    def require(self, path: Path, what: str, folder: bool = False) -> Path:
        """Return ``path`` if it exists (as a folder when ``folder``), else raise :meth:`missing`."""
        ok = path.is_dir() if folder else path.is_file()
        if not ok:
            raise self.missing(path, what)
        return path

    def existing(self, paths: Sequence[Path], what: str) -> list[bool]:
        """Which of the listed ``paths`` exist. Missing ones are skipped by the caller, counted in
        :attr:`skipped_files` under ``what`` and named in one warning, as the peers' loaders do."""
        present = [p.is_file() for p in paths]
        absent = [p for p, ok in zip(paths, present) if not ok]
        if absent:
            self.skipped_files[what] = self.skipped_files.get(what, 0) + len(absent)
            LOGGER.warning(
                "%s: %d listed %s file(s) are missing and skipped (first: %s)",
                self.name,
                len(absent),
                what,
                absent[0],
            )
        return present

    def keep_existing(self, paths: Sequence[Path], what: str) -> list[int]:
        """Indices of the listed ``paths`` that exist; missing ones are skipped and counted (see
        :meth:`existing`). A list of which none exists is a :class:`DatasetNotFoundError`: then the
        images are not where the layout says, not merely incomplete."""
        keep = [i for i, ok in enumerate(self.existing(paths, what)) if ok]
        if paths and not keep:
            raise self.missing(Path(paths[0]), f"every listed {what} ({len(paths)} files; this one first)")
        return keep

    def drop_missing(self, places: Sequence[TrainingPlace]) -> list[TrainingPlace]:
        """``places`` without their listed images that are missing (skipped and counted as
        "training <view> image"); a place left without any image is dropped."""
        views = list(dict.fromkeys(v for place in places for v in place.images))
        missing: set[Path] = set()
        for view in views:
            paths = [Path(x) for place in places for x in place.images.get(view, ())]
            present = self.existing(paths, f"training {view.value} image")
            missing.update(path for path, ok in zip(paths, present) if not ok)
        if not missing:
            return list(places)
        out = []
        for place in places:
            images = {v: tuple(x for x in xs if Path(x) not in missing) for v, xs in place.images.items()}
            images = {v: xs for v, xs in images.items() if xs}
            if images:
                out.append(replace(place, images=images))
        if not out:
            first = next(Path(x) for place in places for xs in place.images.values() for x in xs)
            raise self.missing(first, "every listed training image (this one first)")
        return out


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def pool_image_sets(parts: list[ImageSet]) -> ImageSet:
    """Image sets of several views as one: ids and paths concatenated, ``extra["views"]`` the
    view of each item, ``view`` the first part's (an ImageSet names one view)."""
    if not parts:
        raise ValueError("no image set to pool")
    return ImageSet(
        view=parts[0].view,
        ids=[i for part in parts for i in part.ids],
        paths=[p for part in parts for p in (part.paths or [])],
        extra={"views": [part.view for part in parts for _ in part.ids]},
    )
