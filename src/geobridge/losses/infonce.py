"""InfoNCE between two aligned batches: item i of `a` and item i of `b` are positives, every
other item of the batch is a negative (CLIP / Sample4Geo / GeoBridge)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    logit_scale: torch.Tensor | float,
    symmetric: bool = True,
    label_smoothing: float = 0.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over the similarity logits ``logit_scale * a @ b.T`` with positives on the
    diagonal.

    a, b: (B, D) embeddings (normally L2-normalised). logit_scale: the scale itself (already
    exponentiated, i.e. 1/temperature). symmetric: average a->b and b->a (CLIP); otherwise only
    a->b (rows of `a` classify among `b`). mask: (B,) bool; items where it is False are removed
    (their rows and columns), so the result equals the loss on the valid subset. With no valid
    item the result is a zero that keeps the graph (never NaN).
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"info_nce needs two (B, D) tensors of the same shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if mask is not None:
        if mask.shape != a.shape[:1]:
            raise ValueError(f"mask must be ({a.shape[0]},); got {tuple(mask.shape)}")
        a, b = a[mask], b[mask]
    if a.shape[0] == 0:
        return (a.sum() + b.sum()) * 0.0
    logits = logit_scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    forward = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    if not symmetric:
        return forward
    backward = F.cross_entropy(logits.t(), target, label_smoothing=label_smoothing)
    return (forward + backward) / 2
