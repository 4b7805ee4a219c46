"""University-1652 (Zheng et al., ACM MM 2020): drone, street and satellite views of 1,652 buildings.

On-disk layout (as released; ``root`` is the folder holding ``train/`` and ``test/``)::

    root/
      train/
        drone/<building>/image-01.jpeg ...      # ~54 per building, 701 buildings
        street/<building>/*.jpg
        satellite/<building>/<building>.jpg     # one per building
        google/<building>/*.jpg                 # noisy web images (not used here)
      test/
        query_drone/<building>/*.jpeg           # 701 test buildings
        gallery_drone/<building>/*.jpeg
        query_street/<building>/*.jpg
        gallery_street/<building>/*.jpg
        query_satellite/<building>/<building>.jpg
        gallery_satellite/<building>/<building>.jpg   # 951 buildings: 701 + 250 distractors

Labels are the building folder names. Direction ``X2Y`` searches ``test/query_X`` in
``test/gallery_Y``. The galleries keep the 250 distractor buildings; the default protocol
``u1652`` (layumi's script) lets them compete, ``protocol="u1652-s4g"`` (Sample4Geo / DAC)
treats gallery labels absent from the queries as junk. ``multi_query=True`` runs layumi's
multi-query test (a building's query images fused into one query) and ``rerank=True`` his
k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3); both are options of those protocols (see
:mod:`geobridge.evaluation.protocols`), e.g. ``--option multi_query=true`` on the command line. Street directions are offered when the
street folders are present. Training: each of the 701 buildings is a place with all its drone,
street and satellite images; an epoch runs over the drone images (Sample4Geo), see
:mod:`geobridge.data.places`.

Get it from https://github.com/layumi/University1652-Baseline (request form in its README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geobridge.data.benchmarks.base import Benchmark, ImageSet
from geobridge.data.benchmarks.label_folders import places_by_label, scan_label_folders
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, View

PROTOCOLS: tuple[str, ...] = ("u1652", "u1652-s4g")
TRAIN_VIEWS: tuple[View, ...] = (View.DRONE, View.STREET, View.SATELLITE)
_CORE = (Direction(View.DRONE, View.SATELLITE), Direction(View.SATELLITE, View.DRONE))
_STREET = (
    Direction(View.STREET, View.SATELLITE),
    Direction(View.SATELLITE, View.STREET),
    Direction(View.DRONE, View.STREET),
    Direction(View.STREET, View.DRONE),
)


@register_benchmark
class University1652(Benchmark):
    """University-1652 test protocol per direction, and its training pairs."""

    name = "university1652"
    homepage = "https://github.com/layumi/University1652-Baseline"
    layout = (
        "test/{query,gallery}_{drone,street,satellite}/<building>/*.jpg and "
        "train/{drone,street,satellite}/<building>/*.jpg."
    )

    def __init__(
        self, root: str | Path, protocol: str = "u1652", multi_query: bool = False, rerank: bool = False
    ) -> None:
        super().__init__(root)
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"University-1652 protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
            )
        for name, value in (("multi_query", multi_query), ("rerank", rerank)):
            if not isinstance(value, bool):
                raise ValueError(f"University-1652 {name} must be true or false, got {value!r}")
        self.default_protocol = protocol
        self.multi_query, self.rerank = multi_query, rerank
        self.require(self.root / "test", "test folder", folder=True)
        for name in ("query_drone", "gallery_satellite"):
            self.require(self.root / "test" / name, f"test folder {name}", folder=True)

    def directions(self) -> list[Direction]:
        test = self.root / "test"
        has_street = (test / "query_street").is_dir() or (test / "gallery_street").is_dir()
        return list(_CORE + (_STREET if has_street else ()))

    def _test_folder(self, role: str, view: View) -> ImageSet:
        name = f"{role}_{view.value}"
        folder = self.require(self.root / "test" / name, f"test folder {name}", folder=True)
        found = scan_label_folders(folder)
        if not found.paths:
            raise self.missing(folder / "<building>", f"images in {name}")
        return ImageSet(view=view, ids=found.labels, paths=found.paths)

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._test_folder("query", self.check_pair(direction).query)

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._test_folder("gallery", self.check_pair(direction).gallery)

    def protocol_options(
        self, direction: AnyDirection | str, query: ImageSet, gallery: ImageSet
    ) -> dict[str, Any]:
        """The multi-query and re-ranking settings chosen when the benchmark was opened."""
        options: dict[str, Any] = {}
        if self.multi_query:
            options["multi_query"] = True
        if self.rerank:
            options["rerank"] = True
        return options

    def training_places(self) -> list[TrainingPlace]:
        """Every training building with all its images of each view folder present under
        ``train/`` (drone, street, satellite; ``google`` is left out, as the field does)."""
        train = self.require(self.root / "train", "train folder", folder=True)
        folders = {
            view: scan_label_folders(train / view.value)
            for view in TRAIN_VIEWS
            if (train / view.value).is_dir()
        }
        if not folders:
            raise self.missing(train / "drone", "training view folder (drone, street or satellite)")
        return places_by_label(folders)
