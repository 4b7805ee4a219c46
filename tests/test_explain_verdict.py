"""Calibration of the verdict: the accuracy-maximising threshold, JSON round trip, model scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geobridge.explain.verdict import Calibration, best_threshold, calibrate


def test_calibration_picks_the_accuracy_maximising_threshold_on_a_hand_built_set():
    scores = [0.1, 0.2, 0.3, 0.5, 0.55, 0.6, 0.8, 0.9]
    labels = [False, False, True, False, False, True, True, True]
    # t in (0.55, 0.6) misclassifies only 0.3 (7/8); t in (0.2, 0.3) misclassifies 0.5 and 0.55 (6/8)
    fit = calibrate(list(zip(scores, labels)))
    assert fit.threshold == pytest.approx(0.575)
    assert fit.accuracy == pytest.approx(7 / 8)
    assert fit.n_pairs == 8
    assert fit.probability(0.9) > 0.5 > fit.probability(0.5)


def test_best_threshold_matches_a_brute_force_search():
    rng = np.random.default_rng(1)
    for _ in range(20):
        labels = rng.random(30) < 0.5
        scores = np.round(rng.normal(labels.astype(float), 0.8), 2)
        fit = best_threshold(scores, labels)
        grid = np.linspace(scores.min() - 0.01, scores.max() + 0.01, 2001)
        brute = max(((scores >= t) == labels).mean() for t in grid)
        assert fit["accuracy"] == pytest.approx(brute)
        assert ((scores >= fit["threshold"]) == labels).mean() == pytest.approx(brute)


def test_calibration_round_trips_through_json_beside_a_model(tmp_path):
    fit = Calibration(kind="cosine", threshold=0.31, temperature=0.07, accuracy=0.9, n_pairs=10)
    path = fit.save(tmp_path)
    assert path.name == "explain_calibration.json"
    assert Calibration.load(tmp_path) == fit
    path.write_text(json.dumps({"kind": "cosine", "threshold": 0.3, "temprature": 0.1}))
    with pytest.raises(ValueError, match="unknown key"):
        Calibration.load(path)
    with pytest.raises(FileNotFoundError, match="geobridge explain eval"):
        Calibration.load(tmp_path / "nothing.json")


def test_model_verdict_uses_the_models_cosine_similarity(tiny_world_dir):
    import torch
    from PIL import Image

    from geobridge.explain import Explainer
    from geobridge.models import create_model
    from geobridge.records import read_manifest

    torch.manual_seed(0)
    model = create_model("tiny").eval()
    loc = read_manifest(tiny_world_dir)[0]
    calibration = Calibration(kind="cosine", threshold=0.0, temperature=0.1)
    result = Explainer(model=model, calibration=calibration).explain(
        loc.path("satellite"), loc.path("drone"), "drone"
    )
    with torch.no_grad():
        a = model.encode(
            "satellite", model.image_transform("satellite")(Image.open(loc.path("satellite"))).unsqueeze(0)
        )
        b = model.encode("drone", model.image_transform("drone")(Image.open(loc.path("drone"))).unsqueeze(0))
    assert result.similarity == pytest.approx(float((a * b).sum()), abs=1e-5)
    assert result.verdict == (result.similarity >= 0.0)
    assert result.probability == pytest.approx(calibration.probability(result.similarity))
    with pytest.raises(ValueError, match="calibration is for 'cues'"):
        Explainer(model=model, calibration=Calibration(kind="cues"))
