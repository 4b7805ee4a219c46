"""VIGOR (Zhu et al., CVPR 2021): street panoramas of four US cities against a dense satellite grid.

On-disk layout, as released (``root`` holds the four city folders and ``splits/``)::

    root/
      Chicago/ NewYork/ SanFrancisco/ Seattle/
        panorama/<prefix>,<lat>,<lon>,.jpg
        satellite/satellite_<lat>_<lon>.png
      splits/<City>/satellite_list.txt            # one satellite file name per line
      splits/<City>/same_area_balanced_train.txt
      splits/<City>/same_area_balanced_test.txt
      splits/<City>/pano_label_balanced.txt        # every panorama of the city (cross-area)

Each split line is ``<panorama> <positive satellite> <dx> <dy>`` followed by three
``<semi-positive satellite> <dx> <dy>`` groups (offsets in satellite pixels). Coordinates are
parsed from the file names. ``mode="same"`` (same-area) uses all four cities'
``same_area_balanced_{train,test}.txt``; ``mode="cross"`` (cross-area) trains on NewYork +
Seattle and tests on Chicago + SanFrancisco, with ``pano_label_balanced.txt``. The gallery is
every satellite image of the test cities (``satellite_list.txt``). Query ids are the positive
satellite's id (its file stem); ``ImageSet.extra["semi_positive_ids"]`` holds each query's three
semi-positives. Default protocol ``vigor`` (recall, hit rate with semi-positives, metre errors).

Sample4Geo's re-organised copy is read too (detected from the folders present)::

    root/
      satellite/<City>/satellite_<lat>_<lon>.png
      ground/<City>/<prefix>,<lat>,<lon>,.jpg
      splits/<City>/...                           # as above

The split folder is ``splits/`` or, when that is absent, ``splits__corrected/`` (the corrected
labels); ``splits_dir`` names another one. Training places are satellite images: each training
panorama's positive satellite is a place holding that satellite image and every training
panorama whose positive it is (Sample4Geo trains panorama -> positive satellite; several
panoramas may share one), with the satellite's coordinates. A listed image that is missing is
skipped and counted (:meth:`Benchmark.existing`).

Get it from https://github.com/Jeff-Zilence/VIGOR (request form in its README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.data.benchmarks.base import Benchmark, ImageSet
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, View

CITIES: tuple[str, ...] = ("Chicago", "NewYork", "SanFrancisco", "Seattle")
CROSS_AREA_TRAIN: tuple[str, ...] = ("NewYork", "Seattle")
CROSS_AREA_TEST: tuple[str, ...] = ("Chicago", "SanFrancisco")
MODES: tuple[str, ...] = ("same", "cross")
SPLIT_FOLDERS: tuple[str, ...] = ("splits", "splits__corrected")


@dataclass(frozen=True)
class VigorLabel:
    """One split line: a panorama, its positive satellite and three semi-positives, with offsets."""

    city: str
    panorama: str
    positive: str
    semi_positives: tuple[str, ...]
    offset_px: tuple[float, float]


def panorama_latlon(name: str) -> tuple[float, float]:
    """Coordinates from a panorama name ``<prefix>,<lat>,<lon>,.jpg``."""
    parts = name.split(",")
    if len(parts) < 3:
        raise ValueError(f"VIGOR panorama name {name!r} is not '<prefix>,<lat>,<lon>,.jpg'")
    return float(parts[1]), float(parts[2])


def satellite_latlon(name: str) -> tuple[float, float]:
    """Coordinates from a satellite name ``satellite_<lat>_<lon>.png``."""
    parts = Path(name).stem.split("_")
    if len(parts) != 3 or parts[0] != "satellite":
        raise ValueError(f"VIGOR satellite name {name!r} is not 'satellite_<lat>_<lon>.png'")
    return float(parts[1]), float(parts[2])


def parse_label_line(city: str, line: str, source: Path, number: int) -> VigorLabel:
    tokens = line.split()
    if len(tokens) < 4 or (len(tokens) - 1) % 3:
        raise ValueError(
            f"{source}:{number}: expected '<panorama> <satellite> <dx> <dy> ...' (1 + 3k fields), "
            f"got {len(tokens)} fields"
        )
    satellites = tokens[1::3]
    return VigorLabel(
        city=city,
        panorama=tokens[0],
        positive=satellites[0],
        semi_positives=tuple(satellites[1:]),
        offset_px=(float(tokens[2]), float(tokens[3])),
    )


@register_benchmark
class VIGOR(Benchmark):
    """VIGOR same-area or cross-area: P2S."""

    name = "vigor"
    homepage = "https://github.com/Jeff-Zilence/VIGOR"
    layout = (
        "<City>/{panorama,satellite}/ for Chicago, NewYork, SanFrancisco, Seattle (as released) or "
        "{ground,satellite}/<City>/ (Sample4Geo's copy), and splits/<City>/{satellite_list.txt,"
        "same_area_balanced_train.txt,same_area_balanced_test.txt,pano_label_balanced.txt}."
    )
    default_protocol = "vigor"

    def __init__(
        self, root: str | Path, mode: str = "cross", split: str = "test", splits_dir: str | None = None
    ) -> None:
        super().__init__(root)
        if mode not in MODES:
            raise ValueError(f"VIGOR mode must be 'same' (same-area) or 'cross' (cross-area), got {mode!r}")
        if split not in ("train", "test"):
            raise ValueError(f"VIGOR split must be 'train' or 'test', got {split!r}")
        self.mode, self.split = mode, split
        found = [name for name in SPLIT_FOLDERS if (self.root / name).is_dir()]
        self.splits_dir = self.root / (splits_dir or (found[0] if found else SPLIT_FOLDERS[0]))
        self.require(self.splits_dir, "split folder (splits/ or splits__corrected/)", folder=True)
        #: True for Sample4Geo's re-organised copy (ground/<City>, satellite/<City>)
        self.reorganised = (self.root / "ground").is_dir() and (self.root / "satellite").is_dir()
        if not self.reorganised and not any((self.root / city).is_dir() for city in CITIES):
            raise self.missing(self.root / CITIES[0], "city folders (<City>/panorama, or ground/<City>)")
        for city in self.cities(split):
            for folder in (self.image_folder(city, View.STREET), self.image_folder(city, View.SATELLITE)):
                self.require(folder, f"{city} image folder", folder=True)
            self.require(self._label_file(city, split), f"{city} split file")
            self.require(self.splits_dir / city / "satellite_list.txt", f"{city} satellite list")

    def image_folder(self, city: str, view: View) -> Path:
        """The folder of ``city``'s panoramas (``View.STREET``) or satellite images in this layout."""
        if self.reorganised:
            return self.root / ("ground" if view is View.STREET else "satellite") / city
        return self.root / city / ("panorama" if view is View.STREET else "satellite")

    def cities(self, split: str) -> tuple[str, ...]:
        """The cities whose images form ``split`` in this mode."""
        if self.mode == "same":
            return CITIES
        return CROSS_AREA_TRAIN if split == "train" else CROSS_AREA_TEST

    def _label_file(self, city: str, split: str) -> Path:
        name = f"same_area_balanced_{split}.txt" if self.mode == "same" else "pano_label_balanced.txt"
        return self.splits_dir / city / name

    def labels(self, split: str | None = None) -> list[VigorLabel]:
        """Every split line of the cities of ``split``."""
        split = split or self.split
        out: list[VigorLabel] = []
        for city in self.cities(split):
            source = self.require(self._label_file(city, split), f"{city} split file")
            for number, line in enumerate(source.read_text().splitlines(), start=1):
                if line.strip():
                    out.append(parse_label_line(city, line, source, number))
        return out

    def directions(self) -> list[Direction]:
        return [Direction(View.STREET, View.SATELLITE)]

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        self.check_direction(direction)
        labels = self.labels()
        paths = [self.image_folder(lab.city, View.STREET) / lab.panorama for lab in labels]
        keep = self.keep_existing(paths, "panorama")
        labels, paths = [labels[i] for i in keep], [paths[i] for i in keep]
        coords = np.array([panorama_latlon(lab.panorama) for lab in labels], dtype=np.float64).reshape(-1, 2)
        return ImageSet(
            view=View.STREET,
            ids=[Path(lab.positive).stem for lab in labels],
            paths=paths,
            lat=coords[:, 0],
            lon=coords[:, 1],
            extra={
                "semi_positive_ids": [[Path(s).stem for s in lab.semi_positives] for lab in labels],
                "offset_px": np.array([lab.offset_px for lab in labels], dtype=np.float64).reshape(-1, 2),
            },
        )

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        self.check_direction(direction)
        paths: list[Path] = []
        for city in self.cities(self.split):
            listing = self.require(self.splits_dir / city / "satellite_list.txt", f"{city} satellite list")
            names = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
            paths += [self.image_folder(city, View.SATELLITE) / n for n in names]
        paths = [paths[i] for i in self.keep_existing(paths, "satellite image")]
        coords = np.array([satellite_latlon(p.name) for p in paths], dtype=np.float64).reshape(-1, 2)
        return ImageSet(
            view=View.SATELLITE, ids=[p.stem for p in paths], paths=paths, lat=coords[:, 0], lon=coords[:, 1]
        )

    def protocol_options(
        self, direction: AnyDirection | str, query: ImageSet, gallery: ImageSet
    ) -> dict[str, Any]:
        """VIGOR's hit rate needs each query's semi-positive ids."""
        return {"semi_positives": query.extra["semi_positive_ids"]}

    def training_places(self) -> list[TrainingPlace]:
        """One place per positive satellite of the training split: that satellite image and every
        training panorama whose positive it is, at the satellite's coordinates."""
        panoramas: dict[tuple[str, str], list[Path]] = {}
        for lab in self.labels("train"):
            panoramas.setdefault((lab.city, lab.positive), []).append(
                self.image_folder(lab.city, View.STREET) / lab.panorama
            )
        places = []
        for (city, positive), streets in panoramas.items():
            lat, lon = satellite_latlon(positive)
            satellite = self.image_folder(city, View.SATELLITE) / positive
            places.append(
                TrainingPlace(
                    id=Path(positive).stem,
                    lat=lat,
                    lon=lon,
                    images={View.SATELLITE: (satellite,), View.STREET: tuple(streets)},
                )
            )
        return self.drop_missing(places)
