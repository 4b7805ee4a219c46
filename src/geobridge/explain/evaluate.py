"""Run the explainer over labelled pairs: verdict accuracy (GLEAM-X's first metric) and
self-consistency (the verdict written in the paragraph equals the returned verdict); and fit a
calibration on pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from geobridge.explain.explainer import Explainer
from geobridge.explain.metrics import verdict_accuracy
from geobridge.explain.pairs import Pair
from geobridge.explain.verdict import Calibration, LabelledScore, calibrate
from geobridge.explain.verdict_text import parse_verdict


@dataclass
class ExplainEvaluation:
    n_pairs: int
    accuracy: float  # verdict accuracy, 0..1
    self_consistency: float  # share of paragraphs whose parsed verdict equals the returned verdict
    mean_probability_match: float  # mean probability on matching pairs
    mean_probability_mismatch: float
    score_kind: str
    threshold: float
    lang: str

    def to_dict(self) -> dict:
        return asdict(self)


def fit_calibration(explainer: Explainer, pairs: list[Pair], progress: bool = True) -> Calibration:
    """Score every pair (no text) and fit the accuracy-maximising threshold."""
    scored = [
        LabelledScore(explainer.score(p.satellite, p.query, p.query_view)["score"], p.label)
        for p in tqdm(pairs, desc="calibrate", disable=not progress)
    ]
    return calibrate(scored, kind=explainer.calibration.kind)


def evaluate_pairs(
    explainer: Explainer, pairs: list[Pair], lang: str = "en", progress: bool = True
) -> ExplainEvaluation:
    if not pairs:
        raise ValueError("no pairs to evaluate")
    results = [
        explainer.explain(p.satellite, p.query, p.query_view, lang=lang)
        for p in tqdm(pairs, desc="explain", disable=not progress)
    ]
    labels = [p.label for p in pairs]
    verdicts = [r.verdict for r in results]
    consistent = [parse_verdict(r.text) == r.verdict for r in results]
    pos = [r.probability for r, y in zip(results, labels) if y]
    neg = [r.probability for r, y in zip(results, labels) if not y]
    return ExplainEvaluation(
        n_pairs=len(pairs),
        accuracy=verdict_accuracy(verdicts, labels),
        self_consistency=float(np.mean(consistent)),
        mean_probability_match=float(np.mean(pos)) if pos else float("nan"),
        mean_probability_mismatch=float(np.mean(neg)) if neg else float("nan"),
        score_kind=explainer.calibration.kind,
        threshold=explainer.calibration.threshold,
        lang=lang,
    )
