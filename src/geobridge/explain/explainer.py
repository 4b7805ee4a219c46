"""GLEAM-X: explainable cross-view matching of a satellite image and a query of another view.

    from geobridge.explain import Explainer
    result = Explainer().explain("sat.png", "drone.png", "drone", lang="en")
    result.verdict, result.probability, result.text   # True, 0.93, "The satellite image shows ... Verdict: yes"

With a trained geobridge model the verdict comes from the model's calibrated cosine similarity;
without one, from how well the satellite and query cues agree. The paragraph is written offline
from templates, or, when an :class:`~geobridge.explain.llm.LLMClient` is given, by a multimodal
language model (its own verdict then decides, and the offline paragraph is the fallback when its
answer has no readable verdict).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geobridge.explain.compare import agreement_score, compare_cues
from geobridge.explain.cues import as_rgb_array, extract_cues
from geobridge.explain.templates import LANGS, describe_comparison, write_paragraph
from geobridge.explain.verdict import (
    DEFAULT_CALIBRATION,
    Calibration,
    decide,
    model_similarity,
    model_supports,
)
from geobridge.explain.verdict_text import parse_verdict
from geobridge.views import View

QUERY_VIEWS: tuple[View, ...] = (View.DRONE, View.STREET, View.MAP, View.GROUND)


@dataclass
class Explanation:
    """The answer for one satellite/query pair."""

    verdict: bool
    probability: float  # calibrated probability that the pair matches
    similarity: float | None  # model cosine similarity (None without a model)
    cues: dict  # {"satellite": ImageCues as dict, "query": ..., "comparisons": [...], "agreement": float}
    matching: list[str]
    conflicting: list[str]
    text: str
    lang: str
    source: str = "offline"  # "offline" (templates) or "llm"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Explainer:
    """Decide whether a satellite image and a query show one place, and say why."""

    def __init__(self, model: Any = None, calibration: Calibration | None = None, llm: Any = None) -> None:
        self.model = model
        self.llm = llm
        kind = "cosine" if model is not None else "cues"
        if calibration is not None and calibration.kind != kind:
            raise ValueError(
                f"calibration is for {calibration.kind!r} scores but this explainer scores with {kind!r} "
                f"({'a model' if model is not None else 'cues only'})"
            )
        self.calibration = calibration or DEFAULT_CALIBRATION[kind]

    def score(self, satellite: Any, query: Any, query_view: View | str) -> dict[str, Any]:
        """Cues, comparisons and the raw score of one pair (no text); used by calibration."""
        query_view = View.parse(query_view)
        if query_view not in QUERY_VIEWS:
            names = ", ".join(v.value for v in QUERY_VIEWS)
            raise ValueError(f"query view must be one of {names}, got {query_view.value!r}")
        sat_rgb, query_rgb = as_rgb_array(satellite), as_rgb_array(query)
        sat_cues = extract_cues(sat_rgb, View.SATELLITE)
        query_cues = extract_cues(query_rgb, query_view)
        comparisons = compare_cues(sat_cues, query_cues)
        agreement = agreement_score(comparisons)
        notes: list[str] = []
        similarity = None
        if self.model is not None:
            if not model_supports(self.model, query_view):
                raise ValueError(f"the model has no tower for the satellite and {query_view.value} views")
            similarity = model_similarity(self.model, sat_rgb, query_rgb, query_view)
        score = similarity if similarity is not None else agreement
        return {
            "sat_cues": sat_cues,
            "query_cues": query_cues,
            "comparisons": comparisons,
            "agreement": agreement,
            "similarity": similarity,
            "score": score,
            "notes": notes,
            "sat_rgb": sat_rgb,
            "query_rgb": query_rgb,
            "query_view": query_view,
        }

    def explain(self, satellite: Any, query: Any, query_view: View | str, lang: str = "en") -> Explanation:
        """Verdict, probability, cues and a GLEAM-X paragraph for one pair.

        ``satellite`` and ``query`` are image paths, PIL images or ``(H, W, 3)`` uint8 arrays.
        """
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
        scored = self.score(satellite, query, query_view)
        verdict = decide(scored["score"], self.calibration, scored["similarity"])
        comparisons = scored["comparisons"]
        view = scored["query_view"].value
        matching = [
            describe_comparison(c, view, lang) for c in comparisons if c.status == "match" and c.salient
        ]
        conflicting = [describe_comparison(c, view, lang) for c in comparisons if c.status == "conflict"]
        cues = {
            "satellite": scored["sat_cues"].to_dict(),
            "query": scored["query_cues"].to_dict(),
            "comparisons": [c.to_dict() for c in comparisons],
            "agreement": scored["agreement"],
        }
        notes = list(scored["notes"])
        if self.llm is not None:
            answer = self.llm.explain(scored["sat_rgb"], scored["query_rgb"], view, lang=lang)
            llm_verdict = parse_verdict(answer.text)
            if llm_verdict is not None:
                return Explanation(
                    verdict=llm_verdict,
                    probability=verdict.probability,
                    similarity=verdict.similarity,
                    cues=cues,
                    matching=matching,
                    conflicting=conflicting,
                    text=answer.text.strip(),
                    lang=lang,
                    source="llm",
                    notes=notes + ["verdict from the language model; probability from the score"],
                )
            notes.append("the language model's answer had no readable verdict; offline explanation used")
        text = write_paragraph(
            scored["sat_cues"],
            scored["query_cues"],
            comparisons,
            verdict.match,
            verdict.probability,
            lang=lang,
            similarity=verdict.similarity,
        )
        return Explanation(
            verdict=verdict.match,
            probability=verdict.probability,
            similarity=verdict.similarity,
            cues=cues,
            matching=matching,
            conflicting=conflicting,
            text=text,
            lang=lang,
            notes=notes,
        )


def load_explainer(
    model_dir: str | Path | None = None,
    calibration: str | Path | None = None,
    llm: Any = None,
    device: str = "auto",
) -> Explainer:
    """An explainer with a saved model loaded onto ``device`` (and its calibration file beside it,
    if present)."""
    model = None
    calib = None
    if model_dir is not None:
        from geobridge.models import load_model

        model = load_model(model_dir, device=device)
        model.eval()
        beside = Path(model_dir)
        if calibration is None and (beside / "explain_calibration.json").is_file():
            calibration = beside
    if calibration is not None:
        calib = Calibration.load(calibration)
    return Explainer(model=model, calibration=calib, llm=llm)
