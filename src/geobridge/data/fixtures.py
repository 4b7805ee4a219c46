"""Tiny copies of each benchmark, written in the dataset's real on-disk layout.

``write_fixture("cvusa", tmp_path)`` writes a few locations of small random (but deterministic)
images, with the split files, CSVs, JSON and ``.mat`` files the real dataset ships, so that the
loaders in :mod:`geobridge.data.benchmarks` and the whole evaluation path can be exercised
without the data. Useful for smoke-testing a pipeline before pointing it at the real dataset::

    python -c "from geobridge.data.fixtures import write_fixture; write_fixture('vigor', 'vigor-tiny')"
    geobridge evaluate --model demo/model --dataset vigor --root vigor-tiny

Images of the same location share a base colour (plus noise), so a model can in principle
match them. Layout details follow each loader's docstring.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geobridge.views import View


@dataclass(frozen=True)
class FixtureSpec:
    """What a fixture writer is asked for."""

    root: Path
    n_locations: int
    image_size: int
    seed: int


class _Painter:
    """Deterministic small images: one base colour per location, noise per image."""

    def __init__(self, seed: int, size: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.size = size
        self.colours: dict[str, np.ndarray] = {}

    def write(self, path: Path, location: str, panorama: bool = False) -> Path:
        from PIL import Image

        if location not in self.colours:
            self.colours[location] = self.rng.integers(0, 256, size=3)
        height, width = (self.size, 2 * self.size) if panorama else (self.size, self.size)
        noise = self.rng.normal(0.0, 40.0, size=(height, width, 3))
        pixels = np.clip(self.colours[location][None, None, :] + noise, 0, 255).astype(np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        return path


def _ids(prefix: str, start: int, count: int, width: int = 4) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(start, start + count)]


# -- University-1652 and SUES-200: label folders -----------------------------------------------


def _write_university1652(spec: FixtureSpec) -> None:
    paint = _Painter(spec.seed, spec.image_size)
    n = spec.n_locations
    train, test, distractors = _ids("", 1, n), _ids("", 1001, n), _ids("", 2001, max(1, n // 2))
    for b in train:
        for k in range(1, 4):
            paint.write(spec.root / "train" / "drone" / b / f"image-{k:02d}.jpeg", b)
        paint.write(spec.root / "train" / "satellite" / b / f"{b}.jpg", b)
        paint.write(spec.root / "train" / "street" / b / f"{b}_1.jpg", b, panorama=True)
    for b in test + distractors:
        # drone and street galleries hold every test building; the satellite gallery adds distractors
        paint.write(spec.root / "test" / "gallery_satellite" / b / f"{b}.jpg", b)
        if b in distractors:
            continue
        paint.write(spec.root / "test" / "query_satellite" / b / f"{b}.jpg", b)
        for k in range(1, 4):
            paint.write(spec.root / "test" / "query_drone" / b / f"image-{k:02d}.jpeg", b)
            paint.write(spec.root / "test" / "gallery_drone" / b / f"image-{k:02d}.jpeg", b)
        paint.write(spec.root / "test" / "query_street" / b / f"{b}_1.jpg", b, panorama=True)
        paint.write(spec.root / "test" / "gallery_street" / b / f"{b}_1.jpg", b, panorama=True)


def _write_sues200(spec: FixtureSpec) -> None:
    paint = _Painter(spec.seed, spec.image_size)
    places = _ids("", 1, spec.n_locations)
    n_train = max(1, round(spec.n_locations * 0.6))  # 120 of 200 in the real split
    train = places[:n_train]
    for altitude in (150, 200, 250, 300):
        alt = str(altitude)
        for p in places:
            drones = [f"{k}.jpg" for k in range(2)]
            role_sets = [("Testing", "gallery_drone"), ("Testing", "gallery_satellite")]
            role_sets += (
                [("Training", "drone"), ("Training", "satellite")]
                if p in train
                else [("Testing", "query_drone"), ("Testing", "query_satellite")]
            )
            for top, folder in role_sets:
                names = drones if folder.endswith("drone") else ["0.png"]
                for name in names:
                    paint.write(spec.root / top / alt / folder / p / name, p)


# -- CVUSA and CVACT: one-to-one pairs -----------------------------------------------------------


def _write_cvusa(spec: FixtureSpec) -> None:
    paint = _Painter(spec.seed, spec.image_size)
    ids = _ids("", 1, 2 * spec.n_locations, width=7)
    splits = {"train-19zl.csv": ids[: spec.n_locations], "val-19zl.csv": ids[spec.n_locations :]}
    for i in ids:
        paint.write(spec.root / "bingmap" / "19" / f"{i}.jpg", i)
        paint.write(spec.root / "streetview" / "panos" / f"{i}.jpg", i, panorama=True)
        paint.write(spec.root / "streetview" / "annotations" / f"{i}.png", i, panorama=True)
    (spec.root / "splits").mkdir(parents=True, exist_ok=True)
    for name, members in splits.items():
        with open(spec.root / "splits" / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            for i in members:
                row = [f"bingmap/19/{i}.jpg", f"streetview/panos/{i}.jpg", f"streetview/annotations/{i}.png"]
                writer.writerow(row)


def _write_cvact(spec: FixtureSpec) -> None:
    from scipy.io import savemat

    paint = _Painter(spec.seed, spec.image_size)
    n = 2 * spec.n_locations
    ids = [f"{chr(65 + i % 26)}{i:03d}_pano" for i in range(n)]
    for i in ids:
        paint.write(spec.root / "ANU_data_small" / "streetview" / f"{i}_grdView.jpg", i, panorama=True)
        paint.write(spec.root / "ANU_data_small" / "satview_polish" / f"{i}_satView_polish.jpg", i)
    rng = np.random.default_rng(spec.seed)
    # easting, northing in Canberra (UTM zone 55 South)
    utm = np.column_stack([690_000 + rng.uniform(0, 5000, n), 6_090_000 + rng.uniform(0, 5000, n)])
    pano_ids = np.empty((n, 1), dtype=object)
    for k, i in enumerate(ids):
        pano_ids[k, 0] = i
    order = np.arange(1, n + 1)  # MATLAB indices are 1-based
    savemat(
        spec.root / "ACT_data.mat",
        {
            "panoIds": pano_ids,
            "utm": utm,
            "trainSet": {"trainInd": order[: spec.n_locations].reshape(-1, 1).astype(np.float64)},
            "valSet": {"valInd": order[spec.n_locations :].reshape(-1, 1).astype(np.float64)},
        },
    )


# -- VIGOR: a satellite grid per city ----------------------------------------------------------

_VIGOR_ORIGINS = {
    "Chicago": (41.88, -87.63),
    "NewYork": (40.71, -74.00),
    "SanFrancisco": (37.77, -122.42),
    "Seattle": (47.61, -122.33),
}


def _write_vigor(spec: FixtureSpec) -> None:
    paint = _Painter(spec.seed, spec.image_size)
    rng = np.random.default_rng(spec.seed)
    side = max(2, int(np.ceil(np.sqrt(spec.n_locations + 3))))
    step = 0.0006  # about 65 m between satellite centres
    for city, (lat0, lon0) in _VIGOR_ORIGINS.items():
        split_dir = spec.root / "splits" / city
        split_dir.mkdir(parents=True, exist_ok=True)
        grid = [(lat0 + r * step, lon0 + c * step) for r in range(side) for c in range(side)]
        names = [f"satellite_{lat:.7f}_{lon:.7f}.png" for lat, lon in grid]
        for name in names:
            paint.write(spec.root / city / "satellite" / name, f"{city}/{name}")
        (split_dir / "satellite_list.txt").write_text("".join(f"{n}\n" for n in names))
        lines = []
        for k in range(spec.n_locations):
            cell = int(rng.integers(0, len(grid)))
            lat = grid[cell][0] + rng.uniform(-step / 4, step / 4)
            lon = grid[cell][1] + rng.uniform(-step / 4, step / 4)
            pano = f"p{k:04d}{city[:2]},{lat:.7f},{lon:.7f},.jpg"
            paint.write(spec.root / city / "panorama" / pano, f"{city}/{names[cell]}", panorama=True)
            nearest = np.argsort([abs(g[0] - lat) + abs(g[1] - lon) for g in grid])
            others = [j for j in nearest if j != cell][:3]  # semi-positives: neighbouring tiles
            fields = [pano, names[cell], f"{rng.uniform(-20, 20):.4f}", f"{rng.uniform(-20, 20):.4f}"]
            for j in others:
                fields += [names[j], f"{rng.uniform(-320, 320):.4f}", f"{rng.uniform(-320, 320):.4f}"]
            lines.append(" ".join(fields))
        half = (len(lines) + 1) // 2
        (split_dir / "same_area_balanced_train.txt").write_text("".join(f"{line}\n" for line in lines[:half]))
        (split_dir / "same_area_balanced_test.txt").write_text("".join(f"{line}\n" for line in lines[half:]))
        (split_dir / "pano_label_balanced.txt").write_text("".join(f"{line}\n" for line in lines))


# -- GeoText-1652: University-1652 images + captions JSON ----------------------------------------


def _write_geotext1652(spec: FixtureSpec) -> None:
    paint = _Painter(spec.seed, spec.image_size)
    rng = np.random.default_rng(spec.seed)
    words = [
        "red roof",
        "river",
        "parking lot",
        "tall tower",
        "sports field",
        "white facade",
        "trees",
        "road",
    ]

    def describe() -> str:
        chosen = rng.choice(len(words), size=2, replace=False)
        return f"a building with a {words[chosen[0]]} next to a {words[chosen[1]]}"

    for split, buildings, folder, n_captions in (
        ("train", _ids("", 1, spec.n_locations), "train", 1),
        ("test", _ids("", 1001, spec.n_locations), "test/query(701)", 3),
    ):
        entries = []
        for b in buildings:
            names = [f"image-{k:02d}.jpeg" for k in range(1, 3)] + [f"{b}.jpg", f"{b}_street.jpg"]
            for name in names:
                image = f"{folder}/{b}/{name}"
                paint.write(spec.root / "images" / image, b, panorama=name.endswith("_street.jpg"))
                captions = [describe() for _ in range(n_captions)]
                entries.append(
                    {
                        "image_id": f"{b}/{name}",
                        "image": image,
                        "caption": captions[0] if split == "train" else captions,
                        "sentences": ["the building is in the centre", "a road runs on the left"],
                        "bboxes": [[0.5, 0.5, 0.3, 0.3], [0.2, 0.5, 0.1, 0.8]],
                    }
                )
        json_name = "train.json" if split == "train" else "test_951_version.json"
        (spec.root / json_name).write_text(json.dumps(entries))


# -- GeoLoc and our manifest datasets ----------------------------------------------------------


def _split_counts(n: int) -> dict[str, int]:
    """Locations per split: ``n`` test (the evaluated split), as many train, half as many val."""
    return {"train": n, "val": max(1, n // 2), "test": n}


def _write_geoloc(spec: FixtureSpec) -> None:
    """GeoLoc: stems carry the drone footprint box ``<id>_<lat1>_<lon1>_<lat2>_<lon2>``."""
    paint = _Painter(spec.seed, spec.image_size)
    rng = np.random.default_rng(spec.seed)
    index = 0
    for split, count in _split_counts(spec.n_locations).items():
        rows = []
        for _ in range(count):
            lat, lon = 48.85 + rng.uniform(0, 0.02), 2.29 + rng.uniform(0, 0.03)
            half = 0.0005
            stem = f"{index:05d}_{lat - half:.6f}_{lon - half:.6f}_{lat + half:.6f}_{lon + half:.6f}"
            for view in (View.DRONE, View.SATELLITE, View.STREET):
                path = spec.root / "data" / split / view.value / f"{stem}.jpg"
                paint.write(path, stem, panorama=view is View.STREET)
            rows.append({"id": stem, "text": f"location {index}: a road crossing near a park"})
            index += 1
        with open(spec.root / "data" / split / "text.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text"])
            writer.writeheader()
            writer.writerows(rows)


def _write_world(spec: FixtureSpec) -> None:
    """Our world layout: images per split and view, text.csv per split, and manifest.parquet."""
    from geobridge.records import Location, write_manifest

    paint = _Painter(spec.seed, spec.image_size)
    rng = np.random.default_rng(spec.seed)
    views = (View.DRONE, View.STREET, View.SATELLITE, View.MAP)
    locations = []
    index = 0
    for split, count in _split_counts(spec.n_locations).items():
        rows = []
        for _ in range(count):
            ident = f"loc{index:05d}"
            lat, lon = 60.17 + rng.uniform(0, 0.01), 24.94 + rng.uniform(0, 0.02)
            paths = {
                v.value: paint.write(
                    spec.root / split / v.value / f"{ident}.png", ident, panorama=v is View.STREET
                )
                for v in views
            }
            text = f"a {['quiet', 'busy'][index % 2]} street beside {['a park', 'a river', 'tall blocks'][index % 3]}"
            locations.append(
                Location(
                    id=ident,
                    lat=lat,
                    lon=lon,
                    split=split,
                    region=f"region{index % 2}",
                    text=text,
                    paths=paths,
                )
            )
            rows.append({"id": ident, "text": text, "lat": lat, "lon": lon})
            index += 1
        with open(spec.root / split / "text.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text", "lat", "lon"])
            writer.writeheader()
            writer.writerows(rows)
    write_manifest(locations, spec.root / "manifest.parquet")


_WRITERS: dict[str, Callable[[FixtureSpec], None]] = {
    "world": _write_world,
    "geoloc": _write_geoloc,
    "university1652": _write_university1652,
    "cvusa": _write_cvusa,
    "cvact": _write_cvact,
    "vigor": _write_vigor,
    "sues200": _write_sues200,
    "geotext1652": _write_geotext1652,
}


def list_fixtures() -> list[str]:
    """Dataset names :func:`write_fixture` can write."""
    return sorted(_WRITERS)


def write_fixture(
    name: str, root: str | Path, n_locations: int = 6, image_size: int = 32, seed: int = 0
) -> Path:
    """Write a tiny ``name`` dataset under ``root`` in its real layout; returns the root to load.

    ``n_locations`` is the number of test locations / buildings / places (train and other
    splits get a similar number); images are ``image_size`` pixels high (panoramas twice as wide).
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in _WRITERS:
        raise ValueError(f"no fixture writer for {name!r}: expected one of {', '.join(list_fixtures())}")
    if n_locations < 2:
        raise ValueError(f"n_locations must be at least 2, got {n_locations}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _WRITERS[key](FixtureSpec(root=root, n_locations=n_locations, image_size=image_size, seed=seed))
    return root
