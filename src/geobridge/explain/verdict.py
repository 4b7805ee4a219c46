"""The match / no-match verdict: a score turned into a calibrated probability.

The score is a trained geobridge model's cosine similarity between the satellite image and the
query (``model.encode`` of both views) when a model is given, else the cue agreement of
:mod:`geobridge.explain.compare`. A :class:`Calibration` maps the score to a probability,
``sigmoid((score - threshold) / temperature)``; :func:`calibrate` fits it on labelled pairs
(the threshold that maximises verdict accuracy, then the temperature that minimises the
log-loss at that threshold). A calibration is stored as JSON beside the model
(``<model dir>/explain_calibration.json``). Without one, the defaults below are rough guesses;
fit one (``geobridge explain eval --fit-split val``) before trusting probabilities.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.atomic import atomic_write_text
from geobridge.views import View

CALIBRATION_FILE = "explain_calibration.json"
SCORE_KINDS = ("cosine", "cues")


@dataclass(frozen=True)
class Calibration:
    """``probability = sigmoid((score - threshold) / temperature)`` for one kind of score."""

    kind: str = "cues"  # "cosine" (model similarity) or "cues" (cue agreement)
    threshold: float = 0.65
    temperature: float = 0.05
    accuracy: float | None = None  # verdict accuracy on the pairs it was fitted on
    n_pairs: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SCORE_KINDS:
            raise ValueError(f"calibration kind must be one of {SCORE_KINDS}, got {self.kind!r}")
        if not self.temperature > 0:
            raise ValueError(f"calibration temperature must be > 0, got {self.temperature}")

    def probability(self, score: float) -> float:
        z = (score - self.threshold) / self.temperature
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"calibration not found: {path}. Fit one with `geobridge explain eval --fit-split val --save-calibration`."
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"calibration {path} is not valid JSON: {err}") from err
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"calibration {path} has unknown key(s) {', '.join(unknown)}")
        return cls(**data)


DEFAULT_CALIBRATION = {
    "cues": Calibration(kind="cues", threshold=0.65, temperature=0.05),
    "cosine": Calibration(kind="cosine", threshold=0.5, temperature=0.1),
}


@dataclass(frozen=True)
class LabelledScore:
    """A score of one satellite/query pair and whether the pair truly matches."""

    score: float
    label: bool


def best_threshold(
    scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray
) -> dict[str, float]:
    """The threshold (``score >= t`` means match) with the highest accuracy, and that accuracy.

    Candidates are midpoints between consecutive distinct scores plus one below and one above all;
    among equally accurate thresholds the middle one of the first best run is taken.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if len(s) == 0:
        raise ValueError("calibration needs at least one labelled pair")
    unique = np.unique(s)
    candidates = np.concatenate([[unique[0] - 1e-6], (unique[:-1] + unique[1:]) / 2, [unique[-1] + 1e-6]])
    accuracy = np.array([((s >= t) == y).mean() for t in candidates])
    best = accuracy.max()
    first = int(np.argmax(accuracy == best))
    last = first
    while last + 1 < len(candidates) and accuracy[last + 1] == best:
        last += 1
    return {"threshold": float(candidates[(first + last) // 2]), "accuracy": float(best)}


def calibrate(pairs: Iterable[LabelledScore | tuple[float, bool]], kind: str = "cues") -> Calibration:
    """Fit a calibration on labelled pairs: accuracy-maximising threshold, log-loss temperature."""
    items = [p if isinstance(p, LabelledScore) else LabelledScore(float(p[0]), bool(p[1])) for p in pairs]
    scores = np.array([p.score for p in items])
    labels = np.array([p.label for p in items])
    fit = best_threshold(scores, labels)
    spread = float(scores.std()) or 1.0
    temperatures = spread * np.logspace(-2.5, 1, 60)
    eps = 1e-9

    def log_loss(t: float) -> float:
        p = 1.0 / (1.0 + np.exp(-np.clip((scores - fit["threshold"]) / t, -60, 60)))
        return float(-(labels * np.log(p + eps) + (~labels) * np.log(1 - p + eps)).mean())

    temperature = float(min(temperatures, key=log_loss))
    return Calibration(
        kind=kind,
        threshold=fit["threshold"],
        temperature=temperature,
        accuracy=fit["accuracy"],
        n_pairs=len(items),
    )


@dataclass(frozen=True)
class Verdict:
    """The decision for one pair."""

    match: bool
    probability: float
    score: float
    kind: str  # which score decided: "cosine" or "cues"
    similarity: float | None  # the model's cosine similarity when a model was used


def decide(score: float, calibration: Calibration, similarity: float | None = None) -> Verdict:
    probability = calibration.probability(score)
    return Verdict(
        match=score >= calibration.threshold,
        probability=probability,
        score=float(score),
        kind=calibration.kind,
        similarity=similarity,
    )


def model_similarity(model: Any, satellite: np.ndarray, query: np.ndarray, query_view: View | str) -> float:
    """Cosine similarity of the model's embeddings of the satellite image and the query (through
    the embedding engine, so on the model's device)."""
    from PIL import Image

    from geobridge.models.embedder import EmbedOptions, encode_images

    options = EmbedOptions(progress=False)
    a = encode_images(model, [Image.fromarray(satellite)], View.SATELLITE, options, warn=False).emb
    b = encode_images(model, [Image.fromarray(query)], View.parse(query_view), options, warn=False).emb
    return float((a * b).sum())


def model_supports(model: Any, query_view: View | str) -> bool:
    """True when ``model`` has towers for the satellite view and ``query_view``."""
    views = set(getattr(model, "views", []))
    return View.SATELLITE in views and View.parse(query_view) in views
