"""Published numbers as data: the shipped table, `geobridge evaluate --published` beside ours, and
`geobridge models` listing presets and converted models."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.data.fixtures import write_fixture
from geobridge.evaluation.published import METRICS, compare, published_rows, rows_for


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def test_table_rows_are_complete_and_sourced():
    rows = published_rows()
    assert rows and all(row.source and row.protocol and row.gallery for row in rows)
    assert all(row.metrics and set(row.metrics) <= set(METRICS) for row in rows)
    keys = [(row.checkpoint, row.benchmark, row.setting, row.direction) for row in rows]
    assert len(keys) == len(set(keys))
    geoloc = {row.direction: row.metrics for row in rows_for("geobridge")}
    assert geoloc["D2S"] == {"R@1": 45.05, "AP": 49.05} and geoloc["S2P"] == {"R@1": 39.20, "AP": 41.96}
    cvusa = {"R@1": 98.68, "R@5": 99.68, "R@10": 99.78, "R@1%": 99.87}
    assert rows_for("sample4geo-cvusa")[0].metrics == cvusa
    assert rows_for("sample4geo-u1652")[0].protocol == "u1652-s4g"


def test_compare_puts_ours_beside_published():
    entries = compare("sample4geo-u1652", "university1652", {"D2S": {"R@1": 90.0, "AP": 95.0}})
    by_key = {(e.direction, e.metric): e for e in entries}
    assert by_key[("D2S", "R@1")].difference == pytest.approx(90.0 - 92.65)
    assert by_key[("S2D", "R@1")].ours is None and by_key[("S2D", "R@1")].difference is None
    with pytest.raises(ValueError, match="not for dataset"):
        compare("sample4geo-u1652", "cvusa", {})
    with pytest.raises(ValueError, match="no published numbers"):
        rows_for("nope")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from geobridge.models import create_model

    folder = tmp_path_factory.mktemp("published")
    model = create_model("tiny")
    model.save_pretrained(folder / "model")
    return folder / "model"


def test_evaluate_published_prints_the_comparison(tiny_model, tmp_path):
    root = write_fixture("university1652", tmp_path / "u1652", n_locations=4)
    result = _run(
        "evaluate",
        "--model",
        tiny_model,
        "--dataset",
        "university1652",
        "--root",
        root,
        "--directions",
        "D2S",
        "--protocol",
        "u1652-s4g",
        "--published",
        "sample4geo-u1652",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "published: sample4geo-u1652 on university1652" in out
    row = next(line for line in out.splitlines() if re.search(r"D2S\s.*R@1\s", line))
    cells = [c for c in re.split(r"[│|]", row) if c.strip()]
    ours, published, difference = (float(c) for c in cells[2:5])
    assert published == 92.65 and difference == pytest.approx(ours - 92.65, abs=0.011)
    s2d = next(line for line in out.splitlines() if re.search(r"S2D\s.*R@1\s", line))
    assert "–" in s2d  # not evaluated here: no number of ours, no difference
    assert "published with protocol u1652-s4g" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--published", "nope"], "no published numbers"),
        (["--published", "sample4geo-cvusa"], "not for 'university1652'"),
    ],
)
def test_evaluate_published_bad_names_are_one_error_line(tiny_model, tmp_path, args, message):
    result = _run("evaluate", "--model", tiny_model, "--dataset", "university1652", "--root", tmp_path, *args)
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_models_lists_presets_and_converted_models(tiny_model, tmp_path):
    import timm  # a hard dependency (the timm tower backend)
    import torch

    from geobridge.models.convert import convert_sample4geo, render_readme, write_model_dir

    backbone = timm.create_model("convnext_atto", pretrained=False, num_classes=0)
    state = {f"model.{k}": v for k, v in backbone.state_dict().items()} | {"logit_scale": torch.tensor(2.0)}
    torch.save(state, tmp_path / "s4g.pth")
    model, provenance = convert_sample4geo(
        tmp_path / "s4g.pth", arch="convnext_atto", img_size=64, street_size=(32, 128), name="s4g-test"
    )
    write_model_dir(model, tmp_path / "models" / "s4g", provenance, render_readme(model.config, provenance))
    result = _run("models", "--dir", tmp_path / "models")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "presets:" in out and "sample4geo-convnext" in out and "geobridge-clip-l14" in out
    assert "[s4g-test]" in out
    assert "street: tower shared (timm convnext_atto); eval 32x128 cv2-linear-exact" in out
    assert "provenance: sample4geo from s4g.pth" in out and "licence: not stated" in out
    bad = _run("models", "--dir", tmp_path / "missing")
    assert bad.exit_code != 0 and bad.output.strip().startswith("error:")
