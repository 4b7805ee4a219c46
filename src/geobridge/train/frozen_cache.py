"""Memoise the frozen part of a text tower: each distinct text goes through it once per run (or
once across runs).

When the text tower is entirely frozen (GeoBridge's demo keeps the pretrained MiniLM fixed and
trains only the projection above it), its features for a given text never change, yet a plain
loop would recompute them every epoch: on a CPU that is the most expensive part of a step. While
the context is active, the tower's ``forward`` is replaced (on the instance only, so weights and
``state_dict`` are untouched) by a lookup that encodes unseen texts in eval mode (no dropout,
hence deterministic) and reuses the stored features afterwards. When only the last blocks are
trainable (the paper fine-tunes the last layers), the states entering the first trainable block
are what is stored, and each step runs just the trainable top.

Runs that share the same frozen tower (the demo's three ablation variants all start from the
same pretrained MiniLM) can share one ``store``, so a text is encoded once for all of them.
Unseen texts are encoded in chunks sorted by length, so little compute goes into padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from geobridge.views import View


def first_trainable_block(tower: Any) -> int | None:
    """Index of the tower's first block with a trainable parameter when everything below it is
    frozen and the tower can restart from there (``states_entering`` / ``forward_from``); ``None``
    when that does not hold (or nothing is trainable)."""
    if not (hasattr(tower, "states_entering") and hasattr(tower, "forward_from")):
        return None
    try:
        blocks = tower.blocks()
    except NotImplementedError:
        return None
    first = next(
        (i for i, block in enumerate(blocks) if any(p.requires_grad for p in block.parameters())), None
    )
    if first is None:
        return None
    top = {id(p) for block in blocks[first:] for p in block.parameters()} | {
        id(p) for p in tower.head_parameters()
    }
    if any(p.requires_grad and id(p) not in top for p in tower.parameters()):
        return None  # e.g. trainable embeddings below the blocks: nothing can be cached
    return first


@contextmanager
def cached_frozen_text_tower(
    model: Any, store: dict[Any, torch.Tensor] | None = None, chunk_size: int = 64
) -> Iterator[bool]:
    """Cache what the frozen part of the text tower computes while inside; yields whether caching
    is active.

    Entirely frozen tower: each text's feature is stored (key: the text) and reused. Tower frozen
    below block ``k`` (the paper's fine-tuning of the last blocks): the token states entering
    block ``k`` are stored (key: ``(k, text)``) and every call runs only blocks ``k`` and above,
    with gradients. Anything else (trainable embeddings, no block API) is not cached.

    ``store`` is filled and read in place; pass the same dict to runs whose text towers hold the
    same frozen weights, never to runs with different ones. Nested use (a validation hook inside
    a training run that caches already) keeps the outer cache and yields True.
    """
    if not getattr(model, "has_text", False):
        yield False
        return
    tower = model.tower(View.TEXT)
    previous = vars(tower).get("forward")  # an instance-level forward already installed, if any
    if getattr(previous, "is_text_cache", False):  # already caching: the outer context owns it
        yield True
        return
    store = store if store is not None else {}
    if not any(p.requires_grad for p in tower.parameters()):
        block = None
    else:
        block = first_trainable_block(tower)
        if block is None:
            yield False
            return
    original = tower.forward

    def encode_unseen(texts: list[str]) -> None:
        keys = {text: (text if block is None else (block, text)) for text in texts}
        unseen = [text for text in dict.fromkeys(texts) if keys[text] not in store]
        if not unseen:
            return
        was_training = tower.training
        tower.train(False)
        try:
            by_length = sorted(unseen, key=len)
            with torch.no_grad():
                for start in range(0, len(by_length), chunk_size):
                    chunk = by_length[start : start + chunk_size]
                    values = original(chunk) if block is None else tower.states_entering(chunk, block)
                    for text, value in zip(chunk, values):
                        store[keys[text]] = value.detach()
        finally:
            tower.train(was_training)

    def forward(texts: list[str]) -> torch.Tensor:
        encode_unseen(texts)
        device = tower.device  # a shared store may hold features computed on another device
        if block is None:
            return torch.stack([store[text] for text in texts]).to(device)
        return tower.forward_from([store[(block, text)].to(device) for text in texts], block)

    forward.is_text_cache = True  # type: ignore[attr-defined]
    tower.forward = forward
    try:
        yield True
    finally:
        if previous is None:
            del tower.forward
        else:
            tower.forward = previous
