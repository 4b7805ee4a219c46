"""Benchmarks made of location records (one id, coordinates, text and one image per view).

Our own datasets (the embedded world, GeoLoc and anything the builder writes) are lists of
:class:`~geobridge.records.Location`; a query and its positive share the location id, which is
GeoBridge's "same filename stem" convention. Every direction between two views present, and
text to each view, is defined. A listed image that is missing is skipped and counted.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np

from geobridge.data.benchmarks.base import Benchmark, ImageSet
from geobridge.data.places import TrainingPlace
from geobridge.records import Location
from geobridge.views import GEOBRIDGE_DIRECTIONS, AnyDirection, Direction, View, all_directions


class LocationBenchmark(Benchmark):
    """Directions, query and gallery sets of a split of location records."""

    default_protocol = "geobridge"

    def __init__(self, root: str | Path, split: str = "test") -> None:
        super().__init__(root)
        self.split = split
        self._cache: dict[str, list[Location]] = {}

    @abstractmethod
    def read_locations(self, split: str) -> list[Location]:
        """Every location of ``split`` (the subclass's on-disk format)."""

    def locations(self, split: str | None = None) -> list[Location]:
        """Locations of ``split`` (default: the evaluated split), read once."""
        split = split or self.split
        if split not in self._cache:
            self._cache[split] = self.read_locations(split)
        return self._cache[split]

    def views(self) -> list[View]:
        """Views present for at least one location of the evaluated split (text last)."""
        locations = self.locations()
        present = [v for v in View if v.is_image and any(loc.has(v) for loc in locations)]
        return present + ([View.TEXT] if any(loc.text for loc in locations) else [])

    def directions(self) -> list[Direction]:
        possible = all_directions(self.views())
        ordered = [d for d in GEOBRIDGE_DIRECTIONS if d in possible]
        return ordered + [d for d in possible if d not in ordered]

    def location_set(self, view: View, split: str | None = None, queries: bool = False) -> ImageSet:
        """Every location of the split that has ``view``: its image (or text), id and coordinates.
        As ``queries`` of a text direction, a location whose text is empty is kept too (it is a
        query that must count as a miss, not vanish from the denominators)."""
        keep_empty = queries and view is View.TEXT
        chosen = [loc for loc in self.locations(split) if keep_empty or loc.has(view)]
        if not chosen:
            raise ValueError(
                f"{self.name}: no location of split {split or self.split!r} has a {view.value} view"
            )
        lat = np.array([loc.lat for loc in chosen], dtype=np.float64)
        lon = np.array([loc.lon for loc in chosen], dtype=np.float64)
        has_coordinates = bool(np.isfinite(lat).all() and np.isfinite(lon).all())
        ids = [loc.id for loc in chosen]
        if view is View.TEXT:
            return ImageSet(
                view=view,
                ids=ids,
                texts=[loc.text for loc in chosen],
                lat=lat if has_coordinates else None,
                lon=lon if has_coordinates else None,
            )
        paths: list[Path] = []
        for loc in chosen:
            path = loc.path(view)
            assert path is not None  # chosen: the locations that have this image view
            paths.append(Path(path))
        keep = self.keep_existing(paths, f"{view.value} image")
        ids, paths = [ids[i] for i in keep], [paths[i] for i in keep]
        if not has_coordinates:
            return ImageSet(view=view, ids=ids, paths=paths)
        return ImageSet(view=view, ids=ids, paths=paths, lat=lat[keep], lon=lon[keep])

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        return self.location_set(self.check_pair(direction).query, queries=True)

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        return self.location_set(self.check_pair(direction).gallery)

    def training_places(self) -> list[TrainingPlace]:
        """The locations of the ``train`` split, one place each."""
        return [
            TrainingPlace(
                id=loc.id,
                images={View.parse(name): (Path(p),) for name, p in loc.paths.items() if p is not None},
                text=loc.text,
                lat=loc.lat,
                lon=loc.lon,
            )
            for loc in self.locations("train")
        ]
