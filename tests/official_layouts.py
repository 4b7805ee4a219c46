"""Tiny copies of each benchmark in its official on-disk layout, written from the layouts'
documentation (the datasets' READMEs and split scripts) rather than by
:mod:`geobridge.data.fixtures`, so that the loaders are checked against an independent writer.

Every function writes under ``root`` and returns it. Images are small random RGB files whose base
colour depends on the place, so the images of one place look alike (a model can learn them).
"""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

SUES_ALTITUDES: tuple[int, ...] = (150, 200, 250, 300)
VIGOR_CITIES: dict[str, tuple[float, float]] = {
    "Chicago": (41.8781, -87.6298),
    "NewYork": (40.7128, -74.0060),
    "SanFrancisco": (37.7749, -122.4194),
    "Seattle": (47.6062, -122.3321),
}
SIZE = (32, 32)
PANORAMA_SIZE = (64, 16)  # width x height: panoramas are wide


def write_image(path: Path, place: str, rng: np.random.Generator, size: tuple[int, int] = SIZE) -> Path:
    """A random RGB image (JPEG or PNG by suffix) around a colour fixed by ``place``."""
    base = np.frombuffer(zlib.crc32(place.encode()).to_bytes(4, "little")[:3], dtype=np.uint8).astype(int)
    noise = rng.integers(-40, 41, size=(size[1], size[0], 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _ids(start: int, count: int) -> list[str]:
    return [f"{i:04d}" for i in range(start, start + count)]


def write_university1652(
    root: Path,
    n_train: int = 3,
    n_test: int = 3,
    n_distractors: int = 2,
    drone_per_building: int = 3,
    street_per_building: int = 2,
    seed: int = 0,
) -> Path:
    """University-1652 (layumi's release): ``train/{drone,street,satellite,google}/<building>/`` and
    ``test/{query,gallery}_{drone,street,satellite}/<building>/``; the satellite gallery adds
    ``n_distractors`` buildings no query shows."""
    root, rng = Path(root), np.random.default_rng(seed)
    train, test = _ids(1, n_train), _ids(n_train + 1, n_test)
    distractors = _ids(n_train + n_test + 1, n_distractors)

    def building(folder: Path, ident: str, view: str) -> None:
        if view == "drone":
            for k in range(1, drone_per_building + 1):
                write_image(folder / ident / f"image-{k:02d}.jpeg", ident, rng)
        elif view == "street":
            for k in range(street_per_building):
                write_image(folder / ident / f"{ident}_street{k}.jpg", ident, rng)
        else:
            write_image(folder / ident / f"{ident}.jpg", ident, rng)

    for ident in train:
        for view in ("drone", "street", "satellite"):
            building(root / "train" / view, ident, view)
        write_image(root / "train" / "google" / ident / "web0.jpg", ident, rng)
    for view in ("drone", "street", "satellite"):
        for ident in test:
            building(root / "test" / f"query_{view}", ident, view)
            building(root / "test" / f"gallery_{view}", ident, view)
    for ident in distractors:
        building(root / "test" / "gallery_satellite", ident, "satellite")
    return root


def write_sues200_split(
    root: Path,
    n_places: int = 5,
    n_train: int = 3,
    drone_per_place: int = 2,
    altitudes: tuple[int, ...] = SUES_ALTITUDES,
    seed: int = 0,
) -> Path:
    """SUES-200 after the authors' ``split_datasets.py``: ``Training/<alt>/{drone,satellite}/<place>/``
    for the first ``n_train`` places, ``Testing/<alt>/query_*`` for the others and
    ``Testing/<alt>/gallery_*`` for all places."""
    root, rng = Path(root), np.random.default_rng(seed)
    places = _ids(1, n_places)
    for altitude in altitudes:
        for role, chosen in (("", places[:n_train]), ("query_", places[n_train:]), ("gallery_", places)):
            base = root / ("Testing" if role else "Training") / str(altitude)
            for place in chosen:
                for k in range(drone_per_place):
                    write_image(base / f"{role}drone" / place / f"{k}.jpg", place, rng)
                write_image(base / f"{role}satellite" / place / "0.png", place, rng)
    return root


def write_sues200_raw(
    root: Path,
    n_places: int = 5,
    drone_per_place: int = 2,
    altitudes: tuple[int, ...] = SUES_ALTITUDES,
    seed: int = 0,
) -> Path:
    """SUES-200 as downloaded: ``drone-view/<place>/<alt>/*.jpg`` and ``satellite-view/<place>/0.png``."""
    root, rng = Path(root), np.random.default_rng(seed)
    for place in _ids(1, n_places):
        for altitude in altitudes:
            for k in range(drone_per_place):
                write_image(root / "drone-view" / place / str(altitude) / f"{k}.jpg", place, rng)
        write_image(root / "satellite-view" / place / "0.png", place, rng)
    return root


def write_vigor(
    root: Path,
    reorganised: bool = False,
    n_satellites: int = 4,
    panoramas_per_satellite: int = 2,
    splits_dir: str = "splits",
    seed: int = 0,
) -> Path:
    """VIGOR's four cities: satellites on a grid (``satellite_<lat>_<lon>.png``), panoramas
    (``<prefix>,<lat>,<lon>,.jpg``) near their positive satellite, and per city
    ``satellite_list.txt``, ``same_area_balanced_{train,test}.txt`` (alternate panoramas) and
    ``pano_label_balanced.txt`` (all panoramas; cross-area). ``reorganised`` writes Sample4Geo's
    ``ground/<City>``, ``satellite/<City>`` instead of ``<City>/{panorama,satellite}``."""
    if n_satellites < 4:
        raise ValueError("VIGOR needs at least 4 satellites per city (a positive and 3 semi-positives)")
    root, rng = Path(root), np.random.default_rng(seed)
    for city, (lat0, lon0) in VIGOR_CITIES.items():
        ground = root / "ground" / city if reorganised else root / city / "panorama"
        satellite = root / "satellite" / city if reorganised else root / city / "satellite"
        sats = [
            f"satellite_{lat0 + 0.0005 * (k // 2):.7f}_{lon0 + 0.0005 * (k % 2):.7f}.png"
            for k in range(n_satellites)
        ]
        for name in sats:
            write_image(satellite / name, name, rng)
        lines = []
        for j in range(n_satellites * panoramas_per_satellite):
            positive = j // panoramas_per_satellite
            lat, lon = (float(x) for x in Path(sats[positive]).stem.split("_")[1:])
            lat, lon = lat + rng.uniform(-5e-5, 5e-5), lon + rng.uniform(-5e-5, 5e-5)
            name = f"{city[:3]}pano{j:04d},{lat:.7f},{lon:.7f},.jpg"
            write_image(ground / name, sats[positive], rng, PANORAMA_SIZE)
            semis = [sats[(positive + k) % n_satellites] for k in (1, 2, 3)]
            offsets = rng.uniform(-50, 50, size=(4, 2))
            fields = [f"{s} {dx:.4f} {dy:.4f}" for s, (dx, dy) in zip([sats[positive]] + semis, offsets)]
            lines.append(" ".join([name] + fields))
        split = root / splits_dir / city
        split.mkdir(parents=True, exist_ok=True)
        (split / "satellite_list.txt").write_text("\n".join(sats) + "\n")
        (split / "same_area_balanced_train.txt").write_text("\n".join(lines[0::2]) + "\n")
        (split / "same_area_balanced_test.txt").write_text("\n".join(lines[1::2]) + "\n")
        (split / "pano_label_balanced.txt").write_text("\n".join(lines) + "\n")
    return root


def write_cvusa(
    root: Path, n_train: int = 3, n_val: int = 2, with_locations: bool = False, seed: int = 0
) -> Path:
    """CVUSA (the 19zl subset): ``splits/{train,val}-19zl.csv`` (no header), ``bingmap/19/<id>.jpg``,
    ``streetview/panos/<id>.jpg``, ``streetview/annotations/<id>.png``; with ``with_locations``
    also ``split_locations/all.csv`` (rows ``<lat>,<lon>,<id>``, in Kansas)."""
    root, rng = Path(root), np.random.default_rng(seed)
    ids = [f"{i:07d}" for i in range(1, n_train + n_val + 1)]
    for ident in ids:
        write_image(root / "bingmap" / "19" / f"{ident}.jpg", ident, rng)
        write_image(root / "streetview" / "panos" / f"{ident}.jpg", ident, rng, PANORAMA_SIZE)
        write_image(root / "streetview" / "annotations" / f"{ident}.png", ident, rng, PANORAMA_SIZE)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for name, chosen in (("train-19zl.csv", ids[:n_train]), ("val-19zl.csv", ids[n_train:])):
        with open(root / "splits" / name, "w", newline="") as handle:
            csv.writer(handle).writerows(
                [f"bingmap/19/{i}.jpg", f"streetview/panos/{i}.jpg", f"streetview/annotations/{i}.png"]
                for i in chosen
            )
    if with_locations:
        (root / "split_locations").mkdir(exist_ok=True)
        with open(root / "split_locations" / "all.csv", "w", newline="") as handle:
            rows = [[f"{38.5 + 0.01 * k:.6f}", f"{-98.0 - 0.01 * k:.6f}", i] for k, i in enumerate(ids)]
            csv.writer(handle).writerows(rows)
    return root


def write_cvact(root: Path, n_train: int = 3, n_val: int = 2, n_test: int = 2, seed: int = 0) -> Path:
    """CVACT: ``ACT_data.mat`` (``panoIds``, ``utm`` in zone 55S near Canberra, 1-based
    ``trainSet.trainInd``, ``valSet.valInd``, ``valSetAll.valInd``), train and val images under
    ``ANU_data_small/``, test images under ``ANU_data_test/``."""
    from scipy.io import savemat

    root, rng = Path(root), np.random.default_rng(seed)
    n = n_train + n_val + n_test
    ids = [f"pano{k:05d}_{chr(97 + k % 26)}" for k in range(n)]
    utm = np.stack([690000 + 50.0 * np.arange(n), 6090000 + 30.0 * np.arange(n)], axis=1)
    index = np.arange(1, n + 1, dtype=np.float64)
    for k, ident in enumerate(ids):
        folder = root / ("ANU_data_test" if k >= n_train + n_val else "ANU_data_small")
        write_image(folder / "streetview" / f"{ident}_grdView.jpg", ident, rng, PANORAMA_SIZE)
        write_image(folder / "satview_polish" / f"{ident}_satView_polish.jpg", ident, rng)
    savemat(
        root / "ACT_data.mat",
        {
            "panoIds": np.array(ids, dtype=object),
            "utm": utm,
            "trainSet": {"trainInd": index[:n_train, None]},
            "valSet": {"valInd": index[n_train : n_train + n_val, None]},
            "valSetAll": {"valInd": index[n_train + n_val :, None]},
        },
    )
    return root


def write_geotext1652(
    root: Path, n_train: int = 3, n_test: int = 2, drone_per_building: int = 2, seed: int = 0
) -> Path:
    """GeoText-1652 (Hugging Face release): ``train.json`` and ``test_951_version.json`` (one entry
    per image: ``image_id``, ``image`` relative to ``images/``, ``caption``, ``sentences``,
    ``bboxes``; test captions are lists) and ``images/`` with University-1652 names."""
    root, rng = Path(root), np.random.default_rng(seed)
    test_folders = ("query_drone/", "gallery_satellite/")
    for split, buildings, folders in (
        ("train", _ids(1, n_train), ("", "")),
        ("test", _ids(n_train + 1, n_test), test_folders),
    ):
        entries = []
        for ident in buildings:
            names = [f"image-{k:02d}.jpeg" for k in range(1, drone_per_building + 1)] + [f"{ident}.jpg"]
            for name in names:
                folder = folders[0] if name.startswith("image-") else folders[1]
                image = f"{split}/{folder}{ident}/{name}"
                write_image(root / "images" / image, ident, rng)
                captions = [f"Building {ident}, {name}: a {c} roof." for c in ("red", "grey", "flat")]
                entries.append(
                    {
                        "image_id": f"{ident}/{name}",
                        "image": image,
                        "caption": captions[0] if split == "train" else captions,
                        "sentences": [f"A roof of building {ident}."],
                        "bboxes": [[0.5, 0.5, 0.2, 0.2]],
                    }
                )
        name = "train.json" if split == "train" else "test_951_version.json"
        (root / name).write_text(json.dumps(entries, indent=1))
    return root


def write_geoloc(root: Path, n_train: int = 3, n_test: int = 2, seed: int = 0) -> Path:
    """GeoLoc: ``data/{train,test}/{drone,satellite,street}/<stem>.jpg`` (the stem ends with the
    footprint box ``<lat1>_<lon1>_<lat2>_<lon2>``) and ``data/<split>/text.csv`` (``id,text``)."""
    root, rng = Path(root), np.random.default_rng(seed)
    for split, start, count in (("train", 0, n_train), ("test", n_train, n_test)):
        rows = []
        for k in range(start, start + count):
            lat, lon = 48.85 + 0.01 * k, 2.35 + 0.01 * k
            stem = f"{k:05d}_{lat:.6f}_{lon:.6f}_{lat + 0.001:.6f}_{lon + 0.001:.6f}"
            for view in ("drone", "satellite", "street"):
                write_image(root / "data" / split / view / f"{stem}.jpg", stem, rng)
            rows.append({"id": stem, "text": f"Place {k}: a square with trees."})
        with open(root / "data" / split / "text.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text"])
            writer.writeheader()
            writer.writerows(rows)
    return root
