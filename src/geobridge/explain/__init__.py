"""GLEAM-X: explainable cross-view matching.

Given a satellite image and a query of another view (drone, street panorama, map, ground
photo), decide whether they show one place and explain why in a paragraph (English or Chinese)
that describes both images, cites matching and conflicting cues, and ends with the verdict.

    from geobridge.explain import Explainer
    result = Explainer().explain("sat.png", "drone.png", "drone")

Modules: ``cues`` (measured evidence per image), ``compare`` (cue agreement between views),
``verdict`` (calibrated decision), ``templates`` (offline paragraphs), ``verdict_text`` (read a
verdict from text), ``llm`` (OpenAI-compatible multimodal client), ``metrics`` (GLEAM-X
metrics), ``pairs`` (matching / non-matching pairs from a world manifest).
"""

from geobridge.explain.explainer import Explainer, Explanation, load_explainer
from geobridge.explain.verdict import Calibration, LabelledScore, calibrate

__all__ = ["Explainer", "Explanation", "load_explainer", "Calibration", "LabelledScore", "calibrate"]
