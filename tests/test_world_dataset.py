"""World datasets: the layout and manifest, splits, determinism, bad input, and the CLI."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.records import read_manifest
from geobridge.world.dataset import WorldDatasetError, generate_world_dataset
from geobridge.world.describe import banned_words_in

SMALL = {"locations": 8, "size": 32, "world_size_m": 500.0, "regions": 3, "progress": False}


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_manifest_and_text_csv(tiny_world_dir: Path):
    root = tiny_world_dir.parent
    frame = pd.read_parquet(tiny_world_dir)
    assert list(frame.columns[:6]) == ["id", "split", "lat", "lon", "region", "text"]
    assert len(frame) == 36 and frame["id"].is_unique
    locations = read_manifest(tiny_world_dir)
    for loc in locations:
        for view, shape in (
            ("drone", (64, 64)),
            ("satellite", (64, 64)),
            ("map", (64, 64)),
            ("street", (32, 64)),
        ):
            path = loc.path(view)
            assert path == root / loc.split / view / f"{loc.id}.png"
            with Image.open(path) as im:
                assert im.mode == "RGB" and im.size[::-1] == shape
    for split in ("train", "val", "test"):
        with open(root / split / "text.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == ["id", "text", "lat", "lon"]
        expected = frame[frame["split"] == split]
        assert [r["id"] for r in rows] == list(expected["id"])
        assert [r["text"] for r in rows] == list(expected["text"])
    signature = json.loads((root / "world.json").read_text())
    assert signature["seed"] == 0 and signature["source"] == "procedural" and signature["locations"] == 36


def test_cross_region_split_and_distinct_locations(tiny_world_dir: Path):
    frame = pd.read_parquet(tiny_world_dir)
    counts = frame["split"].value_counts().to_dict()
    assert counts["test"] >= 5 and counts["val"] >= 2 and counts["train"] >= 20
    test_regions = set(frame.loc[frame["split"] == "test", "region"])
    train_regions = set(frame.loc[frame["split"] != "test", "region"])
    assert len(test_regions) == 1 and not (test_regions & train_regions)
    assert len(train_regions) >= 2
    # different locations differ: unique texts, unique images per view
    assert frame["text"].is_unique
    for text in frame["text"]:
        assert banned_words_in(text) == [], text
    for view in ("drone", "street", "satellite", "map"):
        digests = {hashlib.sha256((tiny_world_dir.parent / p).read_bytes()).hexdigest() for p in frame[view]}
        assert len(digests) == len(frame), view
    # the locations are spread out (at least the sampling spacing apart)
    lat, lon = frame["lat"].to_numpy(), frame["lon"].to_numpy()
    from geobridge.geo import haversine_m

    d = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert d[~np.eye(len(d), dtype=bool)].min() >= 24.0


@pytest.mark.timeout(300)  # two rendering processes: a hang must fail the test, not block the run
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    a = generate_world_dataset(tmp_path / "a", seed=11, **SMALL).parent
    b = generate_world_dataset(tmp_path / "b", seed=11, workers=2, **SMALL).parent
    c = generate_world_dataset(tmp_path / "c", seed=12, **SMALL).parent
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert len(ha) == 8 * 4 + 3 + 2  # images + text.csv per split + manifest + world.json
    assert ha == hb  # one process or two: same bytes
    assert ha["manifest.parquet"] != hc["manifest.parquet"]
    # re-running into the same folder with the same parameters is allowed and changes nothing
    generate_world_dataset(tmp_path / "a", seed=11, **SMALL)
    assert _hashes(a) == ha
    # outdated imagery: only the satellite view changes (same locations, same texts)
    aged = _hashes(generate_world_dataset(tmp_path / "aged", seed=11, imagery_age=0.8, **SMALL).parent)
    assert set(aged) == set(ha)
    changed = {k.split("/")[1] for k in ha if k.count("/") == 2 and aged[k] != ha[k]}
    assert changed == {"satellite"}
    assert sum(aged[k] != ha[k] for k in ha if "/satellite/" in k) >= 4
    assert (
        pd.read_parquet(a / "manifest.parquet")["text"].tolist()
        == pd.read_parquet(tmp_path / "aged" / "manifest.parquet")["text"].tolist()
    )


def test_capture_variation_changes_each_views_conditions_not_the_places(tmp_path: Path):
    together = generate_world_dataset(tmp_path / "together", seed=11, **SMALL).parent
    apart = generate_world_dataset(tmp_path / "apart", seed=11, capture_variation=1.0, **SMALL).parent
    again = generate_world_dataset(
        tmp_path / "again", seed=11, capture_variation=1.0, workers=2, **SMALL
    ).parent
    ht, ha = _hashes(together), _hashes(apart)
    assert ha == _hashes(again)  # still the same bytes for the same seed
    images = [k for k in ht if k.count("/") == 2 and k.endswith(".png")]
    for view in ("drone", "street", "satellite"):
        assert sum(ha[k] != ht[k] for k in images if f"/{view}/" in k) >= 6, view  # new sun, exposure, season
    assert all(ha[k] == ht[k] for k in images if "/map/" in k)  # a map has no light
    texts = lambda root: pd.read_parquet(root / "manifest.parquet")[["id", "lat", "lon", "text"]]  # noqa: E731
    assert texts(apart).equals(texts(together))
    assert json.loads((apart / "world.json").read_text())["capture_variation"] == 1.0
    assert "capture_variation" not in json.loads(
        (together / "world.json").read_text()
    )  # old signatures still match
    with pytest.raises(WorldDatasetError, match="capture variation must be in"):
        generate_world_dataset(tmp_path / "bad", seed=11, capture_variation=1.5, **SMALL)


def test_capture_conditions_spread_with_the_variation():
    from geobridge.world.render.settings import RenderSettings, capture_conditions

    base = RenderSettings()
    assert capture_conditions(base, 0.0, np.random.default_rng(0)) == base
    small = [capture_conditions(base, 0.1, np.random.default_rng(i)) for i in range(200)]
    large = [capture_conditions(base, 1.0, np.random.default_rng(i)) for i in range(200)]
    turn = lambda s: abs((s.sun_azimuth_deg - base.sun_azimuth_deg + 180.0) % 360.0 - 180.0)  # noqa: E731
    assert max(turn(s) for s in small) <= 18.0 + 1e-9 and max(turn(s) for s in large) > 150.0
    assert all(10.0 <= s.sun_elevation_deg <= 80.0 for s in large)
    assert sum(s.season != base.season for s in small) < sum(s.season != base.season for s in large)
    assert 60 < sum(s.season != base.season for s in large) < 140  # probability 1/2 at full variation


def test_bad_input_is_refused_without_touching_existing_output(tmp_path: Path):
    out = generate_world_dataset(tmp_path / "w", seed=1, **SMALL).parent
    before = _hashes(out)
    with pytest.raises(WorldDatasetError, match="different world"):
        generate_world_dataset(out, seed=2, **SMALL)
    with pytest.raises(WorldDatasetError, match="unknown view 'thermal'"):
        generate_world_dataset(
            tmp_path / "x", seed=1, views="drone,thermal", **{k: v for k, v in SMALL.items()}
        )
    with pytest.raises(WorldDatasetError, match="bbox must be"):
        generate_world_dataset(tmp_path / "z", seed=1, **{**SMALL, "bbox": (24.9, 60.1, 25.0)})
    with pytest.raises(WorldDatasetError, match="asked for 5000 locations"):
        generate_world_dataset(tmp_path / "y", seed=1, **{**SMALL, "locations": 5000})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(WorldDatasetError, match="not empty"):
        generate_world_dataset(foreign, seed=1, **SMALL)
    assert _hashes(out) == before
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "w"]  # no temporary leftovers
    # --overwrite replaces a different world as a whole
    generate_world_dataset(out, seed=2, overwrite=True, **SMALL)
    assert json.loads((out / "world.json").read_text())["seed"] == 2


def test_cli_world_and_contact_sheet(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = [
        "world",
        str(out),
        "--locations",
        "6",
        "--size",
        "32",
        "--world-size",
        "500",
        "--regions",
        "3",
        "--seed",
        "5",
    ]
    result = runner.invoke(app, args + ["--contact-sheet"])
    assert result.exit_code == 0, result.output
    assert len(read_manifest(out / "manifest.parquet")) == 6
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 600 and sheet.size[1] > 400
    sheet2 = tmp_path / "sheet.png"
    result = runner.invoke(
        app, ["world-sheet", str(out / "manifest.parquet"), "--out", str(sheet2), "--count", "2"]
    )
    assert result.exit_code == 0, result.output
    assert sheet2.exists()

    fresh = ["world", str(tmp_path / "fresh")] + args[2:]
    for argv, message in (
        (fresh + ["--views", "drone,thermal"], "unknown view 'thermal'"),
        (fresh + ["--locations", "9000"], "asked for 9000 locations"),
        (args[:-2] + ["--seed", "6"], "already holds a different world"),
        (fresh + ["--source", "osm", "--osm", str(tmp_path / "missing.osm.pbf")], "OSM file not found"),
        (fresh + ["--season", "monsoon"], "season must be one of"),
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code != 0
        lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
        assert lines[-1].startswith("error: ") and message in lines[-1], result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "fresh").exists()
    assert len(read_manifest(out / "manifest.parquet")) == 6  # the existing world is intact


def test_cli_geoloc_like_world_options_reach_the_dataset(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "geoloc-like"
    result = runner.invoke(
        app,
        [
            "world",
            str(out),
            "--locations",
            "30",
            "--size",
            "32",
            "--world-size",
            "700",
            "--regions",
            "6",
            "--test-regions",
            "2",
            "--test-region-policy",
            "shared-style",
            "--drone-view",
            "orthophoto",
            "--no-text-compass",
            "--min-spacing",
            "20",
            "--views",
            "drone,satellite",
            "--capture-variation",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    signature = json.loads((out / "world.json").read_text())
    assert (
        signature["drone_view"],
        signature["text_compass"],
        signature["test_regions"],
        signature["min_spacing_m"],
        signature["capture_variation"],
    ) == ("orthophoto", False, 2, 20.0, 0.5)
    locations = read_manifest(out / "manifest.parquet")
    assert len({loc.region for loc in locations if loc.split == "test"}) == 2
    assert not any(
        word in loc.text
        for loc in locations
        for word in (" to the north", " to the south", " to the east", " to the west")
    )
    for argv, message in (
        (["--drone-view", "tilted"], "unknown drone view 'tilted'"),
        (["--test-regions", "6"], "cannot hold out 6 regions"),
    ):
        bad = runner.invoke(
            app,
            [
                "world",
                str(tmp_path / "bad"),
                "--locations",
                "12",
                "--size",
                "32",
                "--world-size",
                "700",
                "--regions",
                "6",
            ]
            + argv,
        )
        assert bad.exit_code == 2 and message in bad.output
        assert not (tmp_path / "bad").exists()
