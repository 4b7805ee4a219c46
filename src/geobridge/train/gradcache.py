"""Gradient caching: a contrastive batch larger than memory allows, with the big batch's loss.

InfoNCE needs every embedding of the batch at once, but the towers' activations need not be
kept at once. Gradient caching (Gao et al., 2021) splits the step in three:

1. embed the whole batch in micro-batches *without* a graph (only B x D embeddings are kept);
2. compute the loss on those embeddings (leaves that require grad) and backpropagate it to
   the embeddings and to the logit scale: the gradient cache ``dL/dz``;
3. re-embed each micro-batch *with* a graph and backpropagate ``sum(z * dL/dz)``, whose
   gradient with respect to the parameters is exactly that micro-batch's share of ``dL/dθ``.

The loss and the parameter gradients equal those of the big batch (up to float rounding) for
towers without batch-dependent layers; the random state before each micro-batch's first
forward is replayed in step 3 so dropout masks match. Peak memory is one micro-batch's graph
plus the B x D embeddings. Towers with BatchNorm see micro-batch statistics (as under plain
accumulation) and update their running statistics in both passes: use LayerNorm towers (ViT,
ConvNeXt) where exact big-batch equivalence matters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from geobridge.train.batches import batch_size_of, encode_views, masks_on, slice_batch
from geobridge.views import View


@dataclass
class CachedStepOutput:
    """What one gradient-cached step computed; ``finite`` False means nothing was backpropagated."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    finite: bool
    frozen_views: set[View] = field(default_factory=set)


def grad_cache_step(
    model: Any,
    batch: dict[Any, Any],
    views: Sequence[View],
    loss_fn: Callable[..., Any],
    micro_batch: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    loss_multiplier: float = 1.0,
    scale_loss: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
    frozen_views: set[View] | None = None,
) -> CachedStepOutput:
    """Accumulate into ``.grad`` the gradients of ``loss_multiplier * loss(batch)``.

    ``scale_loss`` is the AMP grad scaler's ``scale`` (identity without one). ``frozen_views``
    holds views whose embeddings turned out to need no gradient (frozen towers): their
    re-forward is skipped; the set is updated and returned for the next step.
    """
    frozen = set(frozen_views or ())
    n = batch_size_of(batch)
    bounds = [(start, min(start + micro_batch, n)) for start in range(0, n, micro_batch)]

    # 1. embed without a graph, remembering the random state before each micro-batch
    rng_states: list[torch.Tensor] = []
    chunks: dict[View, list[torch.Tensor]] = {view: [] for view in views}
    with torch.no_grad():
        for start, stop in bounds:
            rng_states.append(torch.get_rng_state())
            with autocast():
                part = encode_views(model, slice_batch(batch, start, stop), views, device)
            for view in views:
                chunks[view].append(part[view].float())
    state_after = torch.get_rng_state()

    # 2. loss over the full batch; gradients stop at the cached embeddings (+ the logit scale)
    cached = {view: torch.cat(chunks[view]).requires_grad_(True) for view in views}
    out = loss_fn(cached, model.logit_scale_value(), masks_on(batch, views, device))
    if not bool(torch.isfinite(out.total.detach())):
        return CachedStepOutput(
            total=out.total.detach(), terms=_detached(out.terms), finite=False, frozen_views=frozen
        )
    scale_loss(out.total * loss_multiplier).backward()

    # 3. re-embed each micro-batch with a graph and push the cached gradients through it
    for (start, stop), state in zip(bounds, rng_states):
        torch.set_rng_state(state)
        part_batch = slice_batch(batch, start, stop)
        with autocast():
            part = encode_views(model, part_batch, [v for v in views if v not in frozen], device)
        surrogate = None
        for view, embedding in part.items():
            grad = cached[view].grad
            if not embedding.requires_grad or grad is None:
                frozen.add(view)
                continue
            term = (embedding.float() * grad[start:stop]).sum()
            surrogate = term if surrogate is None else surrogate + term
        if surrogate is not None:
            surrogate.backward()
    torch.set_rng_state(state_after)
    return CachedStepOutput(
        total=out.total.detach(), terms=_detached(out.terms), finite=True, frozen_views=frozen
    )


def _detached(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach() for name, value in terms.items()}
