"""Training data from any source: a manifest, or a benchmark in its released layout, by name.

Every source ends as the items of a training epoch (:class:`~geobridge.records.Location`, one
image per view, items of a place sharing its id; see :mod:`geobridge.data.places`):

* a **manifest** (``geobridge world``, ``geobridge build run``, ``geobridge data prepare``): its
  rows of the training split are the items, as written;
* a **benchmark** (``university1652``, ``vigor``, ``cvusa``, ...): its training split read from
  the released layout by the loader, with the loader's own options (VIGOR's ``mode``,
  SUES-200's ``altitude``, ...).

A run mixes several (GLEAM-C's fused phase) by listing them in ``data.sources``; each item then
knows its source, so a sampler can give every source its share of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geobridge.records import Location, read_manifest
from geobridge.views import View


@dataclass(frozen=True)
class SourceSpec:
    """Where one source's training items come from: a ``manifest`` path, or a ``dataset`` name
    with its ``root`` folder and loader ``options``. ``name`` labels it in logs and batches.
    A recipe names its dataset and leaves ``root`` to the user: it is checked when read."""

    manifest: str = ""
    dataset: str = ""
    root: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if bool(self.manifest) == bool(self.dataset):
            raise ValueError(
                "a training source is either a manifest or a dataset (with its root), not "
                f"{'both' if self.manifest else 'neither'}"
            )
        if self.manifest and self.options:
            raise ValueError("loader options go with a dataset, not a manifest")

    def root_path(self) -> Path:
        """The dataset's root folder; an error saying how to set it when the recipe left it empty."""
        if not self.root:
            raise ValueError(
                f"dataset {self.dataset!r} needs its root folder: set data.root=DIR "
                "(data.sources.N.root=DIR for a source of a mixture)"
            )
        return Path(self.root)

    @property
    def label(self) -> str:
        """``name``, else the dataset name, else the manifest's folder name."""
        if self.name:
            return self.name
        if self.dataset:
            return self.dataset
        path = Path(self.manifest)
        return (path if path.suffix not in (".parquet", ".csv") else path.parent).name or "manifest"


def training_items(spec: SourceSpec, views: Sequence[View | str], split: str = "train") -> list[Location]:
    """The items of one epoch of ``spec`` over ``views``. For a manifest, ``split`` selects its
    rows; a benchmark trains on its own training split."""
    views = [View.parse(v) for v in views]
    if spec.manifest:
        items = read_manifest(spec.manifest, split=split)
        if not items:
            raise ValueError(f"no locations in split {split!r} of {spec.manifest}; check data.train_split")
        return items
    from geobridge.data.benchmarks import load_benchmark

    benchmark = load_benchmark(spec.dataset, spec.root_path(), **dict(spec.options))
    return benchmark.training_locations(views)


def has_coordinates(items: Sequence[Location]) -> bool:
    """True when every item has finite coordinates (GPS-neighbour batches need them)."""
    return all(math.isfinite(loc.lat) and math.isfinite(loc.lon) for loc in items)
