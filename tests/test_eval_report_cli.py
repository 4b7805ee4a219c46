"""Reports (JSON, Markdown, PNG curves, HTML examples) and the `geobridge evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import evaluate
from geobridge.evaluation.report import (
    markdown_table,
    plot_recall_curves,
    recall_curve,
    write_html_examples,
    write_report_json,
)


def unit(rng, n, d=8):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    gallery = unit(rng, 12)
    query = gallery[:6] + 0.6 * unit(rng, 6)
    paths = []
    for i in range(12):
        path = tmp_path / "img" / f"{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), i * 20, np.uint8)).save(path)
        paths.append(str(path))
    ids = np.array([f"{i:02d}" for i in range(12)])
    Embeddings(query, ids[:6], paths=np.array(paths[:6])).save(tmp_path / "q.npz")
    Embeddings(gallery, ids, paths=np.array(paths)).save(tmp_path / "g.npz")
    return tmp_path


def test_reports_hold_the_protocol_and_every_metric(files):
    q, g = Embeddings.load(files / "q.npz"), Embeddings.load(files / "g.npz")
    results = {"D2S": evaluate(q, g, "geobridge"), "S2D": evaluate(g, q, "u1652")}
    write_report_json(results, files / "r.json", include_per_query=True)
    loaded = json.loads((files / "r.json").read_text())["results"]
    assert loaded["D2S"]["protocol"] == "geobridge" and loaded["S2D"]["protocol"] == "u1652"
    assert loaded["D2S"]["metrics"]["R@1"] == pytest.approx(results["D2S"].metrics["R@1"])
    assert loaded["S2D"]["n_query"] == 12 and len(loaded["S2D"]["per_query"]["rank"]) == 12
    table = markdown_table(results).splitlines()
    assert table[0].startswith("| direction | protocol | queries | gallery | R@1 | R@5 | R@10 | R@1% | AP |")
    assert table[2].startswith("| D2S | geobridge | 6 | 12 | ")
    assert f"{results['S2D'].metrics['AP']:.2f}" in table[3]
    curve = recall_curve(results["D2S"])
    assert curve.size == 12 and curve[0] == pytest.approx(results["D2S"].metrics["R@1"]) and curve[-1] == 100.0
    png = plot_recall_curves(results, files / "curves.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_html_page_embeds_thumbnails_and_marks_the_true_match(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((10, 10, 3), 60 * i, np.uint8)).save(path)
        paths.append(path)
    top = np.array([[1, 2, 3, 0, -1], [2, 3, 1, 0, -1]])
    page = write_html_examples(paths[:2], paths, top, np.array([1, 0]), tmp_path / "ex.html", ranks=np.array([0, 3]), top=3)
    text = page.read_text()
    assert text.count("data:image/jpeg;base64,") == 2 + 3 + 3 + 1  # queries, top-3s, q1's true match
    assert text.count("✓ true match") == 1  # query 0's #1
    assert "rank 4" in text  # query 1's true match is outside its top-3
    assert text.index("query 1") < text.index("query 0")  # misses are shown first


def run(args):
    return CliRunner().invoke(app, args)


def test_cli_npz_mode_prints_the_table_and_writes_reports(files):
    out = run([
        "evaluate", "--query", str(files / "q.npz"), "--gallery", str(files / "g.npz"), "--protocol", "pairs",
        "--json", str(files / "r.json"), "--markdown", str(files / "r.md"), "--html", str(files / "r.html"), "--quiet",
    ])
    assert out.exit_code == 0, out.output
    expected = evaluate(Embeddings.load(files / "q.npz"), Embeddings.load(files / "g.npz"), "pairs")
    assert "protocol: pairs" in out.output and f"{expected.metrics['R@1']:.2f}%" in out.output
    report = json.loads((files / "r.json").read_text())
    assert report["protocol"] == "pairs" and report["n_query"] == 6 and report["n_gallery"] == 12
    assert set(report["metrics"]) == {"R@1", "R@5", "R@10", "R@1%"}
    assert "| q->g | pairs | 6 | 12 |" in (files / "r.md").read_text()
    assert "<table>" in (files / "r.html").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--protocol", "nope"], "unknown protocol 'nope'"),
        ([], "--protocol is required"),
        (["--protocol", "pairs", "--semi-positives", "x.json"], "only applies to --protocol vigor"),
    ],
)
def test_cli_errors_are_one_line(files, extra, message):
    out = run(["evaluate", "--query", str(files / "q.npz"), "--gallery", str(files / "g.npz"), "--quiet", *extra])
    assert out.exit_code != 0
    assert message in out.output and "Traceback" not in out.output


def test_cli_reports_missing_and_mismatched_files(files):
    out = run(["evaluate", "--query", str(files / "missing.npz"), "--gallery", str(files / "g.npz"), "--protocol", "u1652"])
    assert out.exit_code != 0 and "embeddings file not found" in out.output
    Embeddings(np.ones((2, 3), np.float32), np.array(["a", "b"])).save(files / "d3.npz")
    out = run(["evaluate", "--query", str(files / "d3.npz"), "--gallery", str(files / "g.npz"), "--protocol", "u1652", "--json", str(files / "bad.json")])
    assert out.exit_code != 0 and "dimension 3 but gallery vectors 8" in out.output
    assert not (files / "bad.json").exists()
    out = run(["evaluate", "--query", str(files / "q.npz")])
    assert out.exit_code != 0 and "--gallery" in out.output


def test_cli_model_mode_evaluates_a_benchmark_fixture(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from geobridge.data.fixtures import write_fixture
    from geobridge.models import create_model

    create_model("tiny").save_pretrained(tmp_path / "model")
    root = write_fixture("cvusa", tmp_path / "cvusa", n_locations=4)
    out = run([
        "evaluate", "--model", str(tmp_path / "model"), "--dataset", "cvusa", "--root", str(root),
        "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md"), "--quiet",
    ])
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results and all(r["protocol"] == "pairs" for r in results.values())
    assert all(r["n_query"] == r["n_gallery"] > 0 for r in results.values())
    assert "protocol: pairs" in out.output
    out = run(["evaluate", "--model", str(tmp_path / "nope"), "--dataset", "cvusa", "--root", str(root)])
    assert out.exit_code != 0 and "model folder" in out.output
    out = run(["evaluate", "--model", str(tmp_path / "model"), "--dataset", "cvusa", "--root", str(tmp_path / "empty")])
    assert out.exit_code != 0 and "Traceback" not in out.output
