"""`geobridge demo`'s headline path, run end to end on a small world: render, train the three
ablation variants, evaluate every direction, write the report, the model and the gallery."""

from __future__ import annotations

import json
from dataclasses import replace

from geobridge.demo import DEMO_WORLD, run_demo
from geobridge.models import load_model
from geobridge.retrieval.gallery import Gallery

DIRECTIONS = {"D2S", "S2D", "D2P", "P2D", "P2S", "S2P", "T2D", "T2P", "T2S"}


def test_run_demo_writes_every_result_a_reader_is_promised(tmp_path):
    out = tmp_path / "demo"
    lines: list[str] = []
    result = run_demo(
        out,
        world=replace(DEMO_WORLD, locations=90, size=32, world_size_m=600, regions=4, test_regions=1),
        overrides=["optim.epochs=1", "data.batch_size=8"],
        progress=False,
        echo=lines.append,
    )
    assert set(result.metrics) == DIRECTIONS and set(result.ablation) == {
        "image-only",
        "text-only",
        "geobridge",
    }
    test_places = result.metrics["D2S"]["gallery"]
    assert all(row["gallery"] == test_places for row in result.metrics.values())
    assert all(0.0 <= row["R@1"] <= row["R@5"] <= 100.0 for row in result.metrics.values())
    on_disk = json.loads((out / "metrics.json").read_text())["directions"]
    assert on_disk == result.metrics
    # the paper's finding is checked on every street direction with its interval
    assert any(line.startswith("P2D: geobridge R@1") and "interval" in line for line in result.findings)
    report = (out / "report.html").read_text()
    for page in ("examples_P2D.html", "examples_P2S.html", "examples_D2S.html", "recall_geobridge.png"):
        assert (out / page).is_file() and page in report
    assert load_model(out / "model").has_text
    assert Gallery.load(out / "gallery").info.size == test_places
    assert any("timings:" in line for line in lines)
