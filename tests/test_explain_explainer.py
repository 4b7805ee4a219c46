"""The offline GLEAM-X explainer on the embedded world: verdict scores, paragraphs in English and
Chinese, the verdict parser, and the `geobridge explain` commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.explain import Explainer
from geobridge.explain.pairs import build_pairs
from geobridge.explain.verdict_text import parse_verdict
from geobridge.records import read_manifest

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def locations(tiny_world_dir):
    return read_manifest(tiny_world_dir)


@pytest.mark.parametrize("view", ["drone", "map", "street"])
def test_own_pairs_score_higher_than_mismatched_pairs_with_cues_only(locations, view):
    explainer = Explainer()
    rng = np.random.default_rng(0)
    own, other = [], []
    for i, loc in enumerate(locations[:18]):
        j = (i + 1 + int(rng.integers(len(locations) - 1))) % len(locations)
        own.append(explainer.score(loc.path("satellite"), loc.path(view), view)["score"])
        other.append(explainer.score(loc.path("satellite"), locations[j].path(view), view)["score"])
    assert np.mean(own) > np.mean(other) + 0.1
    assert np.mean(np.array(own)[:, None] > np.array(other)[None, :]) > 0.7  # AUC of the cue score


def test_english_paragraph_describes_both_images_and_ends_with_a_consistent_verdict(locations):
    explainer = Explainer()
    sat = locations[2].path("satellite")
    for query in (locations[2].path("drone"), locations[0].path("drone")):
        result = explainer.explain(sat, query, "drone", lang="en")
        text = result.text
        assert text.startswith(("The satellite image", "In the satellite image"))
        assert "drone image" in text
        assert text.endswith("Verdict: yes" if result.verdict else "Verdict: no")
        assert text.count("Verdict:") == 1
        assert parse_verdict(text) is result.verdict
        assert ("same place" in text or "supports a match" in text) is result.verdict
        assert re.search(r"\d+%", text), "cues are cited with numbers"
        assert result.matching or result.conflicting
        for cue in result.matching + result.conflicting:
            assert cue in text
    own = explainer.explain(sat, locations[2].path("drone"), "drone")
    mismatched = explainer.explain(sat, locations[0].path("drone"), "drone")
    assert own.verdict and not mismatched.verdict
    assert own.probability > mismatched.probability


def test_chinese_output_is_chinese(locations):
    result = Explainer().explain(
        locations[5].path("satellite"), locations[5].path("street"), "street", lang="zh"
    )
    letters = [ch for ch in result.text if ch.isalpha()]
    assert len(CJK.findall(result.text)) / len(letters) > 0.9
    assert result.text.endswith("结论：是" if result.verdict else "结论：否")
    assert "Verdict" not in result.text
    assert parse_verdict(result.text) is result.verdict
    assert result.lang == "zh"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The roofs agree. Verdict: yes", True),
        ("Roofs differ.\n**Verdict:** No.", False),
        ("Both show a river... Final answer: YES", True),
        ("颜色不同。结论：否", False),
        ("建筑一致。结论: 是", True),
        ("They are not the same location.", False),
        ("Both images show the same location.", True),
        ("I considered yes at first. Verdict: no", False),
        ("The images are interesting.", None),
        ("", None),
    ],
)
def test_verdict_parser(text, expected):
    assert parse_verdict(text) is expected


def test_pairs_are_balanced_and_negatives_are_other_locations(locations):
    pairs = build_pairs(locations, "drone", seed=3)
    assert len(pairs) == 2 * len(locations)
    assert sum(p.label for p in pairs) == len(locations)
    assert all((p.satellite_id == p.query_id) is p.label for p in pairs)
    assert len(build_pairs(locations, "drone", n_pairs=6)) == 6
    with pytest.raises(ValueError, match="image query view, not text"):
        build_pairs(locations, "text")


def test_nearest_negatives_are_among_each_places_closest_neighbours(locations):
    from geobridge.geo import haversine_m

    by_id = {loc.id: loc for loc in locations}

    def ground_distance_m(pair) -> float:
        anchor, other = by_id[pair.satellite_id], by_id[pair.query_id]
        return haversine_m(anchor.lat, anchor.lon, other.lat, other.lon)

    k = 3
    pairs = build_pairs(locations, "drone", seed=1, negatives="nearest", nearest_k=k)
    negatives = [p for p in pairs if not p.label]
    assert len(negatives) == len(locations)
    for pair in negatives:
        anchor = by_id[pair.satellite_id]
        others = sorted(
            haversine_m(anchor.lat, anchor.lon, loc.lat, loc.lon) for loc in locations if loc.id != anchor.id
        )
        assert pair.query_id != anchor.id
        assert ground_distance_m(pair) <= others[k - 1]
    random_far = np.mean(
        [ground_distance_m(p) for p in build_pairs(locations, "drone", seed=1) if not p.label]
    )
    near = np.mean([ground_distance_m(p) for p in negatives])
    assert near < random_far  # hard negatives are closer on the ground than random ones
    with pytest.raises(ValueError, match="negatives must be one of"):
        build_pairs(locations, "drone", negatives="hardest")


def test_cli_explains_one_pair_as_json_and_rejects_bad_input(locations, tmp_path):
    runner = CliRunner()
    loc = locations[3]
    out = runner.invoke(
        app,
        [
            "explain",
            "--satellite",
            str(loc.path("satellite")),
            "--query",
            str(loc.path("map")),
            "--view",
            "map",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["lang"] == "en" and isinstance(data["verdict"], bool) and 0.0 <= data["probability"] <= 1.0
    assert parse_verdict(data["text"]) is data["verdict"]
    bad = runner.invoke(
        app, ["explain", "--satellite", str(tmp_path / "nope.png"), "--query", str(loc.path("map"))]
    )
    assert bad.exit_code != 0
    assert bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    bad_view = runner.invoke(
        app,
        [
            "explain",
            "--satellite",
            str(loc.path("satellite")),
            "--query",
            str(loc.path("map")),
            "--view",
            "sonar",
        ],
    )
    assert bad_view.exit_code != 0 and "unknown view" in bad_view.stderr


def test_cli_eval_reports_accuracy_and_self_consistency(tiny_world_dir, tmp_path):
    runner = CliRunner()
    report = tmp_path / "report.json"
    calib = tmp_path / "calib.json"
    out = runner.invoke(
        app,
        [
            "explain",
            "eval",
            "--manifest",
            str(tiny_world_dir),
            "--split",
            "test",
            "--view",
            "map",
            "--fit-split",
            "train",
            "--save-calibration",
            str(calib),
            "--json",
            str(report),
            "--quiet",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(report.read_text())
    assert data["self_consistency"] == 1.0
    assert data["accuracy"] > 0.5 and data["n_pairs"] >= 4
    assert json.loads(calib.read_text())["kind"] == "cues"
    missing = runner.invoke(app, ["explain", "eval", "--manifest", str(tmp_path / "none.parquet")])
    assert missing.exit_code != 0 and missing.stderr.startswith("error: manifest not found")
