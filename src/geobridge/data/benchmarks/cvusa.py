"""CVUSA (Workman et al. 2015; Zhai et al. 2017 subset): street panoramas and aerial images, one-to-one.

On-disk layout (the CVPR'17 subset used by every cross-view paper; ``root`` holds ``splits/``)::

    root/
      splits/train-19zl.csv      # 35,532 rows
      splits/val-19zl.csv        # 8,884 rows
      bingmap/19/<id>.jpg        # satellite, 750 x 750
      streetview/panos/<id>.jpg  # panorama, 224 x 1232
      streetview/annotations/<id>.png   # listed in the CSVs, not needed here
      split_locations/all.csv    # optional: coordinates, one row <lat>,<lon>,<id>

Each split CSV has no header and three columns: ``bingmap/19/<id>.jpg``,
``streetview/panos/<id>.jpg``, ``streetview/annotations/<id>.png`` (paths relative to ``root``).
A panorama's one positive is the satellite image on its row; ids are the satellite file stems
(e.g. ``0000001``). Default protocol ``pairs`` (Sample4Geo: rank = number of gallery scores
strictly above the true match; R@1% cut-off gallery_size // 100).

Coordinates: the 19zl subset itself has none. When ``split_locations/all.csv`` is present (as in
the localisation re-packaging of CVUSA) its rows give them; layout assumption: no header, each
row ``<lat>,<lon>,<id>`` with ``<id>`` the file id (the stem of ``bingmap/19/<id>.jpg``; a path
is reduced to its stem). Ids it lacks get NaN. Without the file, coordinates stay unset (NaN in
training places), and distance metrics are left out.

A listed image that is missing is skipped and counted (:meth:`Benchmark.existing`).

Get it from the CVUSA authors (https://mvrl.cse.wustl.edu/datasets/cvusa/, request form).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from geobridge.data.benchmarks.base import Benchmark, ImageSet
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, View

SPLIT_FILES: dict[str, str] = {"train": "train-19zl.csv", "val": "val-19zl.csv"}
LOCATIONS_FILE = Path("split_locations") / "all.csv"


def read_locations(path: Path) -> dict[str, tuple[float, float]]:
    """id -> (lat, lon) from rows ``<lat>,<lon>,<id>`` (blank rows and a header row are skipped)."""
    out: dict[str, tuple[float, float]] = {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{number}: expected '<lat>,<lon>,<id>', got {row}")
            try:
                lat, lon = float(row[0]), float(row[1])
            except ValueError:
                if number == 1:
                    continue  # a header
                raise ValueError(f"{path}:{number}: expected '<lat>,<lon>,<id>', got {row}") from None
            out[Path(row[2].strip()).stem] = (lat, lon)
    return out


@register_benchmark
class CVUSA(Benchmark):
    """CVUSA: P2S (the published direction) and S2P on the validation split."""

    name = "cvusa"
    homepage = "https://mvrl.cse.wustl.edu/datasets/cvusa/"
    layout = (
        "splits/{train,val}-19zl.csv (no header: bingmap/19/<id>.jpg,streetview/panos/<id>.jpg,annotation), "
        "bingmap/19/, streetview/panos/, optionally split_locations/all.csv (<lat>,<lon>,<id>)."
    )
    default_protocol = "pairs"

    def __init__(self, root: str | Path, split: str = "val") -> None:
        super().__init__(root)
        if split not in SPLIT_FILES:
            raise ValueError(f"CVUSA split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
        self.split = split
        self.require(self.root / "splits" / SPLIT_FILES[split], f"{split} split file")
        locations = self.root / LOCATIONS_FILE
        #: id -> (lat, lon) from split_locations/all.csv; None without that file
        self.coordinates = read_locations(locations) if locations.is_file() else None

    def directions(self) -> list[Direction]:
        return [Direction(View.STREET, View.SATELLITE), Direction(View.SATELLITE, View.STREET)]

    def rows(self, split: str | None = None) -> list[tuple[str, Path, Path]]:
        """(id, satellite path, panorama path) for each row of a split file."""
        split = split or self.split
        csv_path = self.require(self.root / "splits" / SPLIT_FILES[split], f"{split} split file")
        out: list[tuple[str, Path, Path]] = []
        with open(csv_path, newline="") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2:
                    raise ValueError(
                        f"{csv_path}:{number}: expected 'bingmap/19/<id>.jpg,streetview/panos/<id>.jpg,...', "
                        f"got {row}"
                    )
                satellite, panorama = (self.root / row[0].strip(), self.root / row[1].strip())
                out.append((satellite.stem, satellite, panorama))
        if not out:
            raise ValueError(f"{csv_path} lists no image pairs")
        return out

    def latlon(self, ident: str) -> tuple[float, float]:
        """Coordinates of ``ident`` from ``split_locations/all.csv``; NaN when unknown."""
        return (self.coordinates or {}).get(ident, (math.nan, math.nan))

    def _images(self, view: View) -> ImageSet:
        rows = self.rows()
        paths = [sat if view is View.SATELLITE else pano for _, sat, pano in rows]
        keep = self.keep_existing(paths, f"{view.value} image")
        ids = [rows[i][0] for i in keep]
        lat = lon = None
        if self.coordinates is not None:
            lat, lon = np.array([self.latlon(i) for i in ids], dtype=np.float64).reshape(-1, 2).T
        return ImageSet(view=view, ids=ids, paths=[paths[i] for i in keep], lat=lat, lon=lon)

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._images(self.check_pair(direction).query)

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._images(self.check_pair(direction).gallery)

    def training_places(self) -> list[TrainingPlace]:
        """One place per row of ``train-19zl.csv``: its satellite image and its panorama."""
        places = []
        for ident, sat, pano in self.rows("train"):
            lat, lon = self.latlon(ident)
            places.append(
                TrainingPlace(
                    id=ident, images={View.SATELLITE: (sat,), View.STREET: (pano,)}, lat=lat, lon=lon
                )
            )
        return self.drop_missing(places)
