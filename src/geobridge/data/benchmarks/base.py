"""What every benchmark loader returns: image sets per retrieval direction, training pairs,
and the error raised when a dataset is absent or incomplete.

A benchmark answers three questions for a retrieval direction (e.g. ``D2S``): which queries
(:meth:`Benchmark.query_set`), which references (:meth:`Benchmark.gallery_set`), and which
evaluation protocol the field uses on it (:attr:`Benchmark.default_protocol`, plus
:meth:`Benchmark.protocol_options`). Ids in an :class:`ImageSet` are the location or class
label: a query is matched with the gallery items that carry its id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

import numpy as np

from geobridge.views import Direction, View

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


@dataclass(frozen=True)
class TrainingPair:
    """One training example of a direction: a query (image or text) and its reference image."""

    id: str
    query_view: View
    reference_view: View
    reference_path: Path
    query_path: Path | None = None
    query_text: str | None = None


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
        if not self.root.is_dir():
            raise self.missing(self.root, "dataset root folder")

    # -- the interface -------------------------------------------------------------------
    @abstractmethod
    def directions(self) -> list[Direction]:
        """The retrieval directions this benchmark defines, in its papers' order."""

    @abstractmethod
    def query_set(self, direction: Direction | str) -> ImageSet:
        """The queries of ``direction``."""

    @abstractmethod
    def gallery_set(self, direction: Direction | str) -> ImageSet:
        """The references searched by the queries of ``direction``."""

    def protocol_options(
        self, direction: Direction | str, query: ImageSet, gallery: ImageSet
    ) -> dict[str, Any]:
        """Keyword options for ``geobridge.evaluation.protocols.evaluate`` (none by default)."""
        return {}

    def training_pairs(self, direction: Direction | str) -> list[TrainingPair]:
        """Training examples of ``direction``; loaders whose dataset has a training split override it."""
        raise ValueError(f"{self.name} defines no training split for {Direction.parse(direction).name}")

    # -- helpers for subclasses ------------------------------------------------------------
    def check_direction(self, direction: Direction | str) -> Direction:
        """Parse ``direction`` and check this benchmark defines it."""
        direction = Direction.parse(direction)
        known = self.directions()
        if direction not in known:
            names = ", ".join(d.name for d in known)
            raise ValueError(f"{self.name} has no direction {direction.name}; it defines {names}")
        return direction

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

    def require_all(self, paths: Iterable[Path], what: str) -> None:
        """Check that every listed image exists; the error names the first missing one and the count."""
        absent = [p for p in paths if not p.is_file()]
        if absent:
            more = f" ({len(absent)} missing in all)" if len(absent) > 1 else ""
            raise self.missing(absent[0], f"{what}{more}")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
