"""SUES-200 (Zhu et al., 2023): drone images of 200 places at 150, 200, 250 and 300 m, and satellite images.

On-disk layout (the authors' released split, e.g. ``SUES-200-512x512``; ``root`` holds
``Training/`` and ``Testing/``, or a ``Dataset/`` folder that does)::

    root/
      Training/<altitude>/drone/<place>/*.jpg          # 120 training places, 50 images each
      Training/<altitude>/satellite/<place>/0.png      # one satellite image per place
      Testing/<altitude>/query_drone/<place>/*.jpg     # the 80 test places
      Testing/<altitude>/query_satellite/<place>/0.png
      Testing/<altitude>/gallery_drone/<place>/*.jpg   # all 200 places
      Testing/<altitude>/gallery_satellite/<place>/0.png   # all 200 places

``altitude`` is one of 150, 200, 250, 300 (a loader evaluates one altitude, as the paper reports
them). Places are four-digit folder names and are the labels. The test galleries hold all 200
places, so the 120 training places act as distractors; the default protocol ``u1652`` lets them
compete. Layout assumption: this follows the authors' ``split_datasets.py`` (Training/Testing,
query/gallery folders per altitude); the raw download (``drone-view/``, ``satellite-view/``)
must be split with that script first.

Get it from the authors (https://github.com/Reza-Zhu/SUES-200-Benchmark, academic use on request).
"""

from __future__ import annotations

from pathlib import Path

from geobridge.data.benchmarks.base import Benchmark, ImageSet, TrainingPair
from geobridge.data.benchmarks.label_folders import pairs_by_label, scan_label_folders
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.views import Direction, View

ALTITUDES: tuple[int, ...] = (150, 200, 250, 300)


@register_benchmark
class SUES200(Benchmark):
    """SUES-200 at one drone altitude: D2S and S2D."""

    name = "sues200"
    homepage = "https://github.com/Reza-Zhu/SUES-200-Benchmark"
    layout = (
        "Training/<altitude>/{drone,satellite}/<place>/* and "
        "Testing/<altitude>/{query_drone,query_satellite,gallery_drone,gallery_satellite}/<place>/*."
    )
    default_protocol = "u1652"

    def __init__(self, root: str | Path, altitude: int = 150) -> None:
        super().__init__(root)
        if int(altitude) not in ALTITUDES:
            raise ValueError(f"SUES-200 altitude must be one of {ALTITUDES}, got {altitude!r}")
        self.altitude = int(altitude)
        if not (self.root / "Testing").is_dir() and (self.root / "Dataset" / "Testing").is_dir():
            self.root = self.root / "Dataset"
        self.test_dir = self.root / "Testing" / str(self.altitude)
        self.require(self.test_dir, f"Testing folder for altitude {self.altitude}", folder=True)
        for name in ("query_drone", "gallery_satellite"):
            self.require(self.test_dir / name, f"test folder {name}", folder=True)

    def directions(self) -> list[Direction]:
        return [Direction(View.DRONE, View.SATELLITE), Direction(View.SATELLITE, View.DRONE)]

    def _test_folder(self, role: str, view: View) -> ImageSet:
        name = f"{role}_{view.value}"
        folder = self.require(self.test_dir / name, f"test folder {name}", folder=True)
        found = scan_label_folders(folder)
        if not found.paths:
            raise self.missing(folder / "<place>", f"images in {name}")
        return ImageSet(view=view, ids=found.labels, paths=found.paths, extra={"altitude": self.altitude})

    def query_set(self, direction: Direction | str) -> ImageSet:
        return self._test_folder("query", self.check_direction(direction).query)

    def gallery_set(self, direction: Direction | str) -> ImageSet:
        return self._test_folder("gallery", self.check_direction(direction).gallery)

    def training_pairs(self, direction: Direction | str) -> list[TrainingPair]:
        """Each training image of the query view with each reference image of its place."""
        direction = self.check_direction(direction)
        train = self.root / "Training" / str(self.altitude)
        queries, refs = (
            scan_label_folders(self.require(train / view.value, f"training folder {view.value}", folder=True))
            for view in (direction.query, direction.gallery)
        )
        return pairs_by_label(direction, queries, refs)
