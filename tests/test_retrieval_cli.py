"""`geobridge gallery build|add|info` and `geobridge locate` on a tiny world."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.records import read_manifest

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from geobridge.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cli_model") / "tiny"
    create_model("tiny").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gallery_dir(model_dir, tiny_world_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_gallery") / "gallery"
    result = run(
        "gallery",
        "build",
        "--model",
        model_dir,
        "--images",
        tiny_world_dir,
        "--view",
        "satellite",
        "--out",
        out,
        "--split",
        "test",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "entries" in result.output
    return out


def test_locate_json_finds_the_query_tile_with_zero_error(gallery_dir, tiny_world_dir):
    test = read_manifest(tiny_world_dir, split="test")
    query = test[2]
    result = run(
        "locate",
        query.path("satellite"),
        "--gallery",
        gallery_dir,
        "--view",
        "satellite",
        "--k",
        "3",
        "--json",
        "--true-lat",
        query.lat,
        "--true-lon",
        query.lon,
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload) == 1 and len(payload[0]["matches"]) == 3
    best = payload[0]["matches"][0]
    assert best["id"] == query.id and best["error_m"] == pytest.approx(0.0, abs=1e-6)
    assert set(best) == {"rank", "id", "score", "lat", "lon", "path", "error_m"}


def test_locate_truth_from_manifest_and_table_output(gallery_dir, tiny_world_dir):
    test = read_manifest(tiny_world_dir, split="test")
    images = [loc.path("drone") for loc in test[:2]]
    result = run("locate", *images, "--gallery", gallery_dir, "--view", "drone", "--manifest", tiny_world_dir)
    assert result.exit_code == 0, result.output
    assert "error_m" in result.stdout and test[0].id[:12] in result.stdout
    assert result.stdout.count("true position") == 2


def test_locate_text(gallery_dir):
    result = run(
        "locate", "--gallery", gallery_dir, "--text", "a quiet street near a park", "--k", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload[0]["view"] == "text" and len(payload[0]["matches"]) == 2


def test_gallery_add_and_info(gallery_dir, tiny_world_dir, tmp_path):
    grown = tmp_path / "grown"
    shutil.copytree(gallery_dir, grown)
    before = json.loads(run("gallery", "info", "--gallery", grown).stdout)["size"]
    result = run(
        "gallery", "add", "--gallery", grown, "--images", tiny_world_dir, "--split", "val", "--quiet"
    )
    assert result.exit_code == 0, result.output
    n_val = len(read_manifest(tiny_world_dir, split="val"))
    assert json.loads(run("gallery", "info", "--gallery", grown).stdout)["size"] == before + n_val


def test_bad_input_is_one_line_error(gallery_dir, model_dir, tiny_world_dir, tmp_path):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(gallery_dir, corrupt)
    (corrupt / "index.npy").write_bytes(b"\x00" * 64)
    image = read_manifest(tiny_world_dir, split="test")[0].path("satellite")
    cases = [
        (("locate", image, "--gallery", corrupt, "--view", "satellite"), "does not match its checksum"),
        (("locate", image, "--gallery", gallery_dir), "--view"),
        (("locate", image, "--gallery", gallery_dir, "--view", "sideways"), "unknown view"),
        (("locate", "--gallery", gallery_dir, "--text", " "), "empty"),
        (("locate", tmp_path / "nope.png", "--gallery", gallery_dir, "--view", "drone"), "not found"),
        (
            (
                "gallery",
                "build",
                "--model",
                tmp_path / "nomodel",
                "--images",
                tiny_world_dir,
                "--out",
                tmp_path / "g",
            ),
            "model folder",
        ),
        (
            (
                "gallery",
                "build",
                "--model",
                model_dir,
                "--images",
                tiny_world_dir,
                "--out",
                tmp_path / "g",
                "--index",
                "IVF4,PQ7",
            ),
            "bad FAISS index string",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()  # no half-written gallery


def test_build_calibrates_the_estimate_and_locate_prints_it(gallery_dir, tiny_world_dir, tmp_path):
    calibration = json.loads((gallery_dir / "calibration.json").read_text())
    assert {"drone", "street", "text"} <= set(calibration["views"])  # the test split's other views
    assert (
        calibration["views"]["drone"]["split"] == "test" and calibration["views"]["drone"]["coverage"] == 0.8
    )
    query = read_manifest(tiny_world_dir, split="test")[0]
    result = run(
        "locate",
        query.path("drone"),
        "--gallery",
        gallery_dir,
        "--view",
        "drone",
        "--k",
        "2",
        "--manifest",
        tiny_world_dir,
    )
    assert result.exit_code == 0, result.output
    assert "(80% of held-out places fall inside), error" in result.stdout
    payload = json.loads(
        run(
            "locate", query.path("drone"), "--gallery", gallery_dir, "--view", "drone", "--k", "1", "--json"
        ).stdout
    )
    assert payload[0]["estimate"]["radius_m"] == calibration["views"]["drone"]["radius_m"]
    own = tmp_path / "own"
    shutil.copytree(gallery_dir, own)
    result = run(
        "gallery",
        "calibrate",
        "--gallery",
        own,
        "--manifest",
        tiny_world_dir,
        "--view",
        "drone",
        "--coverage",
        "0.9",
    )
    assert result.exit_code == 0, result.output
    assert "drone: 90% of held-out places within" in result.stdout
    assert json.loads((own / "calibration.json").read_text())["views"]["drone"]["coverage"] == 0.9
