"""Memoise a frozen text tower: each distinct text is encoded once per run (or once across runs).

When the text tower is entirely frozen (GeoBridge's demo keeps the pretrained MiniLM fixed and
trains only the projection above it), its features for a given text never change, yet a plain
loop would recompute them every epoch: on a CPU that is the most expensive part of a step. While
the context is active, the tower's ``forward`` is replaced (on the instance only, so weights and
``state_dict`` are untouched) by a lookup that encodes unseen texts in eval mode (no dropout,
hence deterministic) and reuses the stored features afterwards.

Runs that share the same frozen tower (the demo's three ablation variants all start from the
same pretrained MiniLM) can share one ``store``, so a text is encoded once for all of them.
Unseen texts are encoded in chunks sorted by length, so little compute goes into padding.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from geobridge.views import View


@contextmanager
def cached_frozen_text_tower(
    model: Any, store: dict[str, torch.Tensor] | None = None, chunk_size: int = 64
) -> Iterator[bool]:
    """Cache the text tower's features while inside; yields whether caching is active
    (False when the model has no text tower or any of its parameters is trainable).

    ``store`` (text -> feature) is filled and read in place; pass the same dict to runs whose
    text towers hold the same frozen weights, never to runs with different ones.
    """
    if not getattr(model, "has_text", False):
        yield False
        return
    tower = model.tower(View.TEXT)
    if any(p.requires_grad for p in tower.parameters()):
        yield False
        return
    original = tower.forward
    store = store if store is not None else {}

    def forward(texts: list[str]) -> torch.Tensor:
        unseen = [text for text in dict.fromkeys(texts) if text not in store]
        if unseen:
            was_training = tower.training
            tower.train(False)
            try:
                by_length = sorted(unseen, key=len)
                with torch.no_grad():
                    for start in range(0, len(by_length), chunk_size):
                        chunk = by_length[start:start + chunk_size]
                        for text, feature in zip(chunk, original(chunk)):
                            store[text] = feature.detach()
            finally:
                tower.train(was_training)
        return torch.stack([store[text] for text in texts])

    tower.forward = forward
    try:
        yield True
    finally:
        del tower.forward
