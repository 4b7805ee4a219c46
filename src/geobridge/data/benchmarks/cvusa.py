"""CVUSA (Workman et al. 2015; Zhai et al. 2017 subset): street panoramas and aerial images, one-to-one.

On-disk layout (the CVPR'17 subset used by every cross-view paper; ``root`` holds ``splits/``)::

    root/
      splits/train-19zl.csv      # 35,532 rows
      splits/val-19zl.csv        # 8,884 rows
      bingmap/19/<id>.jpg        # satellite, 750 x 750
      streetview/panos/<id>.jpg  # panorama, 224 x 1232
      streetview/annotations/<id>.png   # listed in the CSVs, not needed here

Each CSV has no header and three columns: ``bingmap/19/<id>.jpg``,
``streetview/panos/<id>.jpg``, ``streetview/annotations/<id>.png`` (paths relative to ``root``).
A panorama's one positive is the satellite image on its row; ids are the satellite file stems.
Default protocol ``pairs`` (Sample4Geo: rank = number of gallery scores strictly above the
true match; R@1% cut-off gallery_size // 100). CVUSA has no coordinates in this subset.

Get it from the CVUSA authors (https://mvrl.cse.wustl.edu/datasets/cvusa/, request form).
"""

from __future__ import annotations

import csv
from pathlib import Path

from geobridge.data.benchmarks.base import Benchmark, ImageSet, TrainingPair
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.views import Direction, View

SPLIT_FILES: dict[str, str] = {"train": "train-19zl.csv", "val": "val-19zl.csv"}


@register_benchmark
class CVUSA(Benchmark):
    """CVUSA: P2S (the published direction) and S2P on the validation split."""

    name = "cvusa"
    homepage = "https://mvrl.cse.wustl.edu/datasets/cvusa/"
    layout = (
        "splits/{train,val}-19zl.csv (no header: bingmap/19/<id>.jpg,streetview/panos/<id>.jpg,annotation), "
        "bingmap/19/, streetview/panos/."
    )
    default_protocol = "pairs"

    def __init__(self, root: str | Path, split: str = "val") -> None:
        super().__init__(root)
        if split not in SPLIT_FILES:
            raise ValueError(f"CVUSA split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
        self.split = split
        self.require(self.root / "splits" / SPLIT_FILES[split], f"{split} split file")

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
                        f"{csv_path}:{number}: expected 'bingmap/19/<id>.jpg,streetview/panos/<id>.jpg,...', got {row}"
                    )
                satellite, panorama = (self.root / row[0].strip(), self.root / row[1].strip())
                out.append((satellite.stem, satellite, panorama))
        if not out:
            raise ValueError(f"{csv_path} lists no image pairs")
        return out

    def _images(self, view: View) -> ImageSet:
        rows = self.rows()
        paths = [sat if view is View.SATELLITE else pano for _, sat, pano in rows]
        self.require_all(paths, f"{view.value} image listed in splits/{SPLIT_FILES[self.split]}")
        return ImageSet(view=view, ids=[i for i, _, _ in rows], paths=paths)

    def query_set(self, direction: Direction | str) -> ImageSet:
        return self._images(self.check_direction(direction).query)

    def gallery_set(self, direction: Direction | str) -> ImageSet:
        return self._images(self.check_direction(direction).gallery)

    def training_pairs(self, direction: Direction | str) -> list[TrainingPair]:
        direction = self.check_direction(direction)
        out = []
        for ident, sat, pano in self.rows("train"):
            paths = {View.SATELLITE: sat, View.STREET: pano}
            out.append(TrainingPair(ident, direction.query, direction.gallery,
                                    reference_path=paths[direction.gallery], query_path=paths[direction.query]))
        return out
