"""CVACT (Liu & Li, CVPR 2019): street panoramas and aerial images of Canberra, one-to-one.

On-disk layout (``root`` holds the ``.mat`` file, ``ANU_data_small/`` and, for the test split,
``ANU_data_test/``)::

    root/
      ACT_data.mat
      ANU_data_small/streetview/<id>_grdView.jpg           # train and val
      ANU_data_small/satview_polish/<id>_satView_polish.jpg
      ANU_data_test/streetview/<id>_grdView.jpg            # test (CVACT_test)
      ANU_data_test/satview_polish/<id>_satView_polish.jpg

``ACT_data.mat`` (MATLAB, read with ``scipy.io.loadmat``) holds ``panoIds`` (N location ids),
``utm`` (N x 2: easting, northing in metres, UTM zone 55 South) and the splits
``trainSet.trainInd``, ``valSet.valInd`` and ``valSetAll.valInd``: **1-based** indices into
``panoIds`` (MATLAB convention; this loader subtracts 1). The default split ``val`` is CVACT_val
(8,884 pairs); ``split="test"`` is CVACT_test (``valSetAll``, 92,802 pairs, images under
``ANU_data_test/``). Coordinates are converted from UTM (``utm_epsg``, default 32755) to
latitude/longitude so that metre-level errors can be reported. Default protocol ``pairs`` (as
CVUSA). Training places are the ``trainInd`` locations, one per panorama with its satellite
image. A listed image that is missing is skipped and counted (:meth:`Benchmark.existing`).

Get it from https://github.com/Liumouliu/OriCNN (CVACT section: request the ANU data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geobridge.data.benchmarks.base import Benchmark, ImageSet
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, View

SPLIT_FIELDS: dict[str, tuple[str, str]] = {
    "train": ("trainSet", "trainInd"),
    "val": ("valSet", "valInd"),
    "test": ("valSetAll", "valInd"),
}
#: The image folder of each split.
SPLIT_FOLDERS: dict[str, str] = {"train": "ANU_data_small", "val": "ANU_data_small", "test": "ANU_data_test"}


@dataclass
class ActData:
    """The parts of ``ACT_data.mat`` the loader uses; indices already 0-based."""

    pano_ids: list[str]
    utm: np.ndarray | None  # (N, 2) easting, northing
    split_indices: dict[str, np.ndarray]


def read_act_data(path: Path) -> ActData:
    """Read ``ACT_data.mat``; ``panoIds`` may be a cell array or a char matrix."""
    from scipy.io import loadmat

    mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    if "panoIds" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no 'panoIds' variable (found: {found})")
    ids = [str(v).strip() for v in np.atleast_1d(mat["panoIds"])]
    utm = None
    if "utm" in mat:
        utm = np.asarray(mat["utm"], dtype=np.float64).reshape(len(ids), -1)[:, :2]
    splits: dict[str, np.ndarray] = {}
    for split, (struct_name, field_name) in SPLIT_FIELDS.items():
        if struct_name not in mat:
            continue
        indices = np.atleast_1d(np.asarray(getattr(mat[struct_name], field_name), dtype=np.int64)).ravel() - 1
        if indices.size and (indices.min() < 0 or indices.max() >= len(ids)):
            raise ValueError(
                f"{path}: {struct_name}.{field_name} holds indices outside 1..{len(ids)} (they are 1-based)"
            )
        splits[split] = indices
    return ActData(pano_ids=ids, utm=utm, split_indices=splits)


@register_benchmark
class CVACT(Benchmark):
    """CVACT_val, CVACT_test or the training split: P2S and S2P."""

    name = "cvact"
    homepage = "https://github.com/Liumouliu/OriCNN"
    layout = (
        "ACT_data.mat (panoIds, utm, trainSet.trainInd, valSet.valInd, valSetAll.valInd; 1-based), "
        "ANU_data_small/ (train, val) and ANU_data_test/ (test), each with streetview/<id>_grdView.jpg "
        "and satview_polish/<id>_satView_polish.jpg."
    )
    default_protocol = "pairs"

    def __init__(self, root: str | Path, split: str = "val", utm_epsg: int | None = 32755) -> None:
        super().__init__(root)
        if split not in SPLIT_FIELDS:
            raise ValueError(f"CVACT split must be one of {', '.join(SPLIT_FIELDS)}, got {split!r}")
        self.split = split
        self.utm_epsg = utm_epsg
        self.data = read_act_data(self.require(self.root / "ACT_data.mat", "split file ACT_data.mat"))
        if split not in self.data.split_indices:
            struct_name, field_name = SPLIT_FIELDS[split]
            raise ValueError(f"{self.root / 'ACT_data.mat'} has no {struct_name}.{field_name}")
        folder = SPLIT_FOLDERS[split]
        self.require(self.root / folder, f"image folder {folder} of the {split} split", folder=True)

    def directions(self) -> list[Direction]:
        return [Direction(View.STREET, View.SATELLITE), Direction(View.SATELLITE, View.STREET)]

    def image_path(self, pano_id: str, view: View, split: str | None = None) -> Path:
        """Where the ``view`` image of ``pano_id`` lies in ``split`` (default: the evaluated one)."""
        base = self.root / SPLIT_FOLDERS[split or self.split]
        if view is View.STREET:
            return base / "streetview" / f"{pano_id}_grdView.jpg"
        return base / "satview_polish" / f"{pano_id}_satView_polish.jpg"

    def _latlon(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        if self.data.utm is None or self.utm_epsg is None:
            return None, None
        from pyproj import Transformer

        to_wgs84 = Transformer.from_crs(f"EPSG:{self.utm_epsg}", "EPSG:4326", always_xy=True)
        lon, lat = to_wgs84.transform(self.data.utm[indices, 0], self.data.utm[indices, 1])
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)

    def _images(self, view: View) -> ImageSet:
        indices = self.data.split_indices[self.split]
        paths = [self.image_path(self.data.pano_ids[i], view) for i in indices]
        keep = self.keep_existing(paths, f"{view.value} image")
        indices = indices[keep]
        lat, lon = self._latlon(indices)
        ids = [self.data.pano_ids[i] for i in indices]
        return ImageSet(view=view, ids=ids, paths=[paths[i] for i in keep], lat=lat, lon=lon)

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._images(self.check_pair(direction).query)

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        return self._images(self.check_pair(direction).gallery)

    def training_places(self) -> list[TrainingPlace]:
        """One place per ``trainSet.trainInd`` location: its panorama and satellite image, and its
        coordinates (NaN without ``utm``)."""
        if "train" not in self.data.split_indices:
            raise ValueError(f"{self.root / 'ACT_data.mat'} has no trainSet.trainInd")
        indices = self.data.split_indices["train"]
        lat, lon = self._latlon(indices)
        places = []
        for k, index in enumerate(indices):
            ident = self.data.pano_ids[index]
            places.append(
                TrainingPlace(
                    id=ident,
                    images={v: (self.image_path(ident, v, "train"),) for v in (View.SATELLITE, View.STREET)},
                    lat=float(lat[k]) if lat is not None else math.nan,
                    lon=float(lon[k]) if lon is not None else math.nan,
                )
            )
        return self.drop_missing(places)
