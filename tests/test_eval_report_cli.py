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
    html_examples_section,
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
    assert (
        curve.size == 12 and curve[0] == pytest.approx(results["D2S"].metrics["R@1"]) and curve[-1] == 100.0
    )
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
    page = write_html_examples(
        paths[:2], paths, top, np.array([1, 0]), tmp_path / "ex.html", ranks=np.array([0, 3]), top=3
    )
    text = page.read_text()
    assert text.count("data:image/jpeg;base64,") == 2 + 3 + 3 + 1  # queries, top-3s, q1's true match
    assert text.count("✓ true match") == 1  # query 0's #1
    assert "rank 4" in text  # query 1's true match is outside its top-3
    assert text.index("query 1") < text.index("query 0")  # misses are shown first


def run(args):
    return CliRunner().invoke(app, args)


def test_cli_npz_mode_prints_the_table_and_writes_reports(files):
    out = run(
        [
            "evaluate",
            "--query",
            str(files / "q.npz"),
            "--gallery",
            str(files / "g.npz"),
            "--protocol",
            "pairs",
            "--json",
            str(files / "r.json"),
            "--markdown",
            str(files / "r.md"),
            "--html",
            str(files / "r.html"),
            "--quiet",
        ]
    )
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
    out = run(
        ["evaluate", "--query", str(files / "q.npz"), "--gallery", str(files / "g.npz"), "--quiet", *extra]
    )
    assert out.exit_code != 0
    assert message in out.output and "Traceback" not in out.output


def test_cli_reports_missing_and_mismatched_files(files):
    out = run(
        [
            "evaluate",
            "--query",
            str(files / "missing.npz"),
            "--gallery",
            str(files / "g.npz"),
            "--protocol",
            "u1652",
        ]
    )
    assert out.exit_code != 0 and "embeddings file not found" in out.output
    Embeddings(np.ones((2, 3), np.float32), np.array(["a", "b"])).save(files / "d3.npz")
    out = run(
        [
            "evaluate",
            "--query",
            str(files / "d3.npz"),
            "--gallery",
            str(files / "g.npz"),
            "--protocol",
            "u1652",
            "--json",
            str(files / "bad.json"),
        ]
    )
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
    out = run(
        [
            "evaluate",
            "--model",
            str(tmp_path / "model"),
            "--dataset",
            "cvusa",
            "--root",
            str(root),
            "--json",
            str(tmp_path / "r.json"),
            "--markdown",
            str(tmp_path / "r.md"),
            "--quiet",
        ]
    )
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    assert results and all(r["protocol"] == "pairs" for r in results.values())
    assert all(r["n_query"] == r["n_gallery"] > 0 for r in results.values())
    assert "dataset: cvusa, protocol: pairs" in out.output
    # the provenance stays in the JSON report, but the console does not repeat it per direction
    assert all(r["notes"][0] == f"dataset cvusa, direction {name}" for name, r in results.items())
    assert "note (" not in out.output
    out = run(["evaluate", "--model", str(tmp_path / "nope"), "--dataset", "cvusa", "--root", str(root)])
    assert out.exit_code != 0 and "model folder" in out.output
    out = run(
        [
            "evaluate",
            "--model",
            str(tmp_path / "model"),
            "--dataset",
            "cvusa",
            "--root",
            str(tmp_path / "empty"),
        ]
    )
    assert out.exit_code != 0 and "Traceback" not in out.output


def test_html_section_shows_texts_or_ids_where_there_is_no_image(tmp_path):
    image = tmp_path / "g.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(image)
    top = np.array([[0, 1], [1, 0]])
    section = html_examples_section(
        None,
        [image, None],
        top,
        np.array([0, 0]),
        query_ids=["q-a", "q-b"],
        gallery_ids=["g-0", "g-1"],
        query_texts=["a <red> roof", "x" * 1000],
        top=2,
    )
    assert "a &lt;red&gt; roof" in section and "x" * 1000 not in section  # escaped, long text cut
    assert section.count("data:image/jpeg;base64,") == 2  # only g-0 has an image
    assert section.count("no image<br>g-1") == 2  # g-1 shows its id, in both rows
    with pytest.raises(ValueError, match="query_texts and top_indices must have one entry per query"):
        html_examples_section(None, [image], top, np.array([0, 0]), query_texts=["only one"])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A saved tiny model and VIGOR / GeoText-1652 fixtures, shared by the model-mode tests."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from geobridge.data.fixtures import write_fixture
    from geobridge.models import create_model

    base = tmp_path_factory.mktemp("eval-cli")
    create_model("tiny").save_pretrained(base / "model")
    for name in ("vigor", "geotext1652"):
        write_fixture(name, base / name, n_locations=4)
    return base


def model_run(bench, dataset, *extra):
    return run(
        [
            "evaluate",
            "--model",
            str(bench / "model"),
            "--dataset",
            dataset,
            "--root",
            str(bench / dataset),
            "--quiet",
            *extra,
        ]
    )


def test_cli_option_reaches_the_loader_and_html_shows_the_queries(bench, tmp_path):
    from geobridge.data.benchmarks import load_benchmark

    out = model_run(bench, "vigor", "--json", str(tmp_path / "cross.json"))
    assert out.exit_code == 0, out.output
    out = model_run(
        bench,
        "vigor",
        "--option",
        "mode=same",
        "--option",
        "split=test",
        "--json",
        str(tmp_path / "same.json"),
        "--html",
        str(tmp_path / "same.html"),
    )
    assert out.exit_code == 0, out.output
    cross = json.loads((tmp_path / "cross.json").read_text())["results"]["P2S"]
    same = json.loads((tmp_path / "same.json").read_text())["results"]["P2S"]
    expected = load_benchmark("vigor", bench / "vigor", mode="same")
    assert same["n_gallery"] == len(expected.gallery_set("P2S")) == 2 * cross["n_gallery"]
    assert same["n_query"] == len(expected.query_set("P2S"))
    page = (tmp_path / "same.html").read_text()
    assert "<h2>P2S (vigor)</h2>" in page and "vigor: example queries" in page
    shown = [qid for qid in expected.query_set("P2S").ids if f"query {qid}<br>" in page]
    assert len(shown) == same["n_query"]  # 8 queries, all shown (up to 16 are)
    assert page.count("data:image/jpeg;base64,") >= 2 * same["n_query"]  # each query and its gallery items


def test_cli_html_of_text_queries_shows_the_text(bench, tmp_path):
    from geobridge.data.benchmarks import load_benchmark

    out = model_run(
        bench,
        "geotext1652",
        "--option",
        "match=image",
        "--directions",
        "T2S",
        "--html",
        str(tmp_path / "t.html"),
    )
    assert out.exit_code == 0, out.output
    page = (tmp_path / "t.html").read_text()
    texts = load_benchmark("geotext1652", bench / "geotext1652", match="image").query_set("T2S").texts
    assert page.count('<div class="text">') == len(texts)  # 12 text queries, each shown as text
    assert any(f'<div class="text">{text}</div>' in page for text in texts)


def test_cli_geotext_reports_both_official_directions_by_default(bench, tmp_path):
    out = model_run(bench, "geotext1652", "--json", str(tmp_path / "g.json"))
    assert out.exit_code == 0, out.output
    results = json.loads((tmp_path / "g.json").read_text())["results"]
    assert list(results) == ["T2I", "I2T"]
    row = results["T2I"]
    assert row["protocol"] == "geotext" and row["n_query"] == 4 * 4 * 3 and row["n_gallery"] == 4 * 4
    metrics = row["metrics"]
    assert metrics["r_mean"] == pytest.approx(
        sum(metrics[f"{s}_r{k}"] for s in ("img", "txt") for k in (1, 5, 10)) / 6
    )
    assert metrics["R@1"] == metrics["img_r1"] and results["I2T"]["metrics"]["R@1"] == metrics["txt_r1"]
    assert (results["I2T"]["n_query"], results["I2T"]["n_gallery"]) == (4 * 4, 4 * 4 * 3)
    assert "I2T" in out.output and "T2I" in out.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--option", "foo=1"],
            "error: dataset vigor has no option 'foo'; its options are: mode, split, splits_dir",
        ),
        (["--option", "foo"], "error: --option 'foo' is not KEY=VALUE"),
        (["--option", "=same"], "is not KEY=VALUE"),
        (["--option", "mode=same", "--option", "mode=cross"], "--option mode is given twice"),
        (["--option", "mode=diagonal"], "VIGOR mode must be 'same' (same-area) or 'cross' (cross-area)"),
    ],
)
def test_cli_bad_options_are_one_line_errors_and_write_nothing(bench, tmp_path, options, message):
    out = model_run(
        bench, "vigor", *options, "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")
    )
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output
    assert len([line for line in out.output.splitlines() if line.strip()]) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_option_values_are_parsed_by_the_loader_signature(files):
    from geobridge.cli.evaluate import parse_loader_options

    assert parse_loader_options("sues200", ["altitude=200"]) == {"altitude": 200}
    assert parse_loader_options("cvact", ["utm_epsg=null", "split=test"]) == {
        "utm_epsg": None,
        "split": "test",
    }
    assert parse_loader_options("cvact", ["utm_epsg= 32633"]) == {"utm_epsg": 32633}
    # text-typed options keep the text as written: a regex is not read as a YAML list, 2019 not as a number
    assert parse_loader_options("geoloc", ["id_pattern=[0-9]+_(\\w+)", "split=2019"]) == {
        "id_pattern": "[0-9]+_(\\w+)",
        "split": "2019",
    }
    assert parse_loader_options("geoloc", ["coordinate_pattern=null"]) == {"coordinate_pattern": None}
    out = run(
        ["evaluate", "--model", "m", "--dataset", "sues200", "--root", "r", "--option", "altitude=high"]
    )
    assert out.exit_code == 2 and "error: --option altitude=high: sues200's altitude takes int" in out.output
    out = run(
        [
            "evaluate",
            "--query",
            str(files / "q.npz"),
            "--gallery",
            str(files / "g.npz"),
            "--protocol",
            "pairs",
            "--option",
            "mode=same",
        ]
    )
    assert out.exit_code == 2 and "use it with --model/--dataset" in out.output
