"""Memoise a frozen text tower: each distinct text is encoded once per run.

When the text tower is entirely frozen (GeoBridge's demo keeps the pretrained MiniLM fixed and
trains only the projection above it), its features for a given text never change, yet a plain
loop would recompute them every epoch: on a CPU that is the most expensive part of a step. While
the context is active, the tower's ``forward`` is replaced (on the instance only, so weights and
``state_dict`` are untouched) by a lookup that encodes unseen texts in eval mode (no dropout,
hence deterministic) and reuses the stored features afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from geobridge.views import View


@contextmanager
def cached_frozen_text_tower(model: Any) -> Iterator[bool]:
    """Cache the text tower's features while inside; yields whether caching is active
    (False when the model has no text tower or any of its parameters is trainable)."""
    if not getattr(model, "has_text", False):
        yield False
        return
    tower = model.tower(View.TEXT)
    if any(p.requires_grad for p in tower.parameters()):
        yield False
        return
    original = tower.forward
    store: dict[str, torch.Tensor] = {}

    def forward(texts: list[str]) -> torch.Tensor:
        unseen = [text for text in dict.fromkeys(texts) if text not in store]
        if unseen:
            was_training = tower.training
            tower.train(False)
            try:
                with torch.no_grad():
                    features = original(unseen)
            finally:
                tower.train(was_training)
            for text, feature in zip(unseen, features):
                store[text] = feature.detach()
        return torch.stack([store[text] for text in texts])

    tower.forward = forward
    try:
        yield True
    finally:
        del tower.forward
