"""SUES-200 (Zhu et al., 2023): drone images of 200 places at 150, 200, 250 and 300 m, and satellite images.

Two on-disk layouts are read (detected from the folders present; ``root`` holds them, or a
``Dataset/`` folder that does).

The authors' split (``split_datasets.py``, e.g. ``SUES-200-512x512``)::

    root/
      Training/<altitude>/drone/<place>/*.jpg          # 120 training places, 50 images each
      Training/<altitude>/satellite/<place>/0.png      # one satellite image per place
      Testing/<altitude>/query_drone/<place>/*.jpg     # the 80 test places
      Testing/<altitude>/query_satellite/<place>/0.png
      Testing/<altitude>/gallery_drone/<place>/*.jpg   # all 200 places
      Testing/<altitude>/gallery_satellite/<place>/0.png   # all 200 places

The raw download, split here as ``split_datasets.py`` does::

    root/
      drone-view/<place>/<altitude>/*.jpg
      satellite-view/<place>/0.png

The places sorted by folder name (``0001`` ... ``0200``) are split into the first
``train_places`` (120) for training and the rest (80) for testing; the queries are the test
places, the galleries hold all 200 places (``train_places`` only applies to this layout).

``altitude`` is one of 150, 200, 250, 300 (a loader evaluates and trains on one altitude, as the
paper reports them). Places are four-digit folder names and are the labels. The test galleries
hold all 200 places, so the 120 training places act as distractors; the default protocol
``u1652`` lets them compete. Training places hold a place's drone images of the altitude and its
satellite image.

Get it from the authors (https://github.com/Reza-Zhu/SUES-200-Benchmark, academic use on request).
"""

from __future__ import annotations

from pathlib import Path

from geobridge.data.benchmarks.base import Benchmark, ImageSet, list_images
from geobridge.data.benchmarks.label_folders import LabelledImages, places_by_label, scan_label_folders
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, View

ALTITUDES: tuple[int, ...] = (150, 200, 250, 300)
TRAIN_VIEWS: tuple[View, ...] = (View.DRONE, View.SATELLITE)
RAW_FOLDERS: dict[View, str] = {View.DRONE: "drone-view", View.SATELLITE: "satellite-view"}


@register_benchmark
class SUES200(Benchmark):
    """SUES-200 at one drone altitude: D2S and S2D."""

    name = "sues200"
    homepage = "https://github.com/Reza-Zhu/SUES-200-Benchmark"
    layout = (
        "Training/<altitude>/{drone,satellite}/<place>/* and "
        "Testing/<altitude>/{query_drone,query_satellite,gallery_drone,gallery_satellite}/<place>/* "
        "(the authors' split), or the raw drone-view/<place>/<altitude>/*.jpg and "
        "satellite-view/<place>/0.png."
    )
    default_protocol = "u1652"

    def __init__(self, root: str | Path, altitude: int = 150, train_places: int = 120) -> None:
        super().__init__(root)
        if int(altitude) not in ALTITUDES:
            raise ValueError(f"SUES-200 altitude must be one of {ALTITUDES}, got {altitude!r}")
        self.altitude, self.train_places = int(altitude), int(train_places)
        for candidate in (self.root, self.root / "Dataset"):
            split_layout = (candidate / "Testing").is_dir()
            #: True for the raw download (drone-view/, satellite-view/), split by this loader
            self.raw = not split_layout and all((candidate / name).is_dir() for name in RAW_FOLDERS.values())
            if split_layout or self.raw:
                self.root = candidate
                break
        else:
            raise self.missing(
                self.root / "Testing", "Testing folder (or the raw drone-view/ and satellite-view/)"
            )
        self.test_dir = self.root / "Testing" / str(self.altitude)
        if self.raw:
            if not self.places():
                raise self.missing(self.root / "satellite-view" / "<place>", "place folders")
            return
        self.require(self.test_dir, f"Testing folder for altitude {self.altitude}", folder=True)
        for name in ("query_drone", "gallery_satellite"):
            self.require(self.test_dir / name, f"test folder {name}", folder=True)

    def directions(self) -> list[Direction]:
        return [Direction(View.DRONE, View.SATELLITE), Direction(View.SATELLITE, View.DRONE)]

    def places(self) -> list[str]:
        """Raw layout: every place folder name, sorted (the order the official split uses)."""
        folders = [self.root / name for name in RAW_FOLDERS.values()]
        return sorted({p.name for folder in folders for p in folder.iterdir() if p.is_dir()})

    def _raw_images(self, view: View, places: list[str]) -> LabelledImages:
        """Raw layout: the ``view`` images of ``places`` (drone ones at this altitude)."""
        found = LabelledImages(labels=[], paths=[])
        for place in places:
            folder = self.root / RAW_FOLDERS[view] / place
            if view is View.DRONE:
                folder = folder / str(self.altitude)
            images = list_images(folder) if folder.is_dir() else []
            found.labels += [place] * len(images)
            found.paths += images
        return found

    def _test_images(self, role: str, view: View) -> ImageSet:
        name = f"{role}_{view.value}"
        if self.raw:
            places = self.places()
            found = self._raw_images(view, places[self.train_places :] if role == "query" else places)
            where = self.root / RAW_FOLDERS[view] / "<place>"
        else:
            folder = self.require(self.test_dir / name, f"test folder {name}", folder=True)
            found, where = scan_label_folders(folder), folder / "<place>"
        if not found.paths:
            raise self.missing(where, f"images of {name} at altitude {self.altitude}")
        return ImageSet(view=view, ids=found.labels, paths=found.paths, extra={"altitude": self.altitude})

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._test_images("query", self.check_pair(direction).query)

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._test_images("gallery", self.check_pair(direction).gallery)

    def training_places(self) -> list[TrainingPlace]:
        """Each training place with its drone images at this altitude and its satellite image."""
        if self.raw:
            places = self.places()[: self.train_places]
            return places_by_label({view: self._raw_images(view, places) for view in TRAIN_VIEWS})
        train = self.require(
            self.root / "Training" / str(self.altitude),
            f"Training folder for altitude {self.altitude}",
            folder=True,
        )
        folders = [
            self.require(train / v.value, f"training folder {v.value}", folder=True) for v in TRAIN_VIEWS
        ]
        return places_by_label({v: scan_label_folders(f) for v, f in zip(TRAIN_VIEWS, folders)})
