"""All-gather with gradient, so contrastive negatives come from the global batch.

Every rank gathers all ranks' embeddings and computes the *same* global loss. The backward pass
sums the gradients every rank computed for each slice (all-reduce) and hands each rank its own
slice: rank r receives world_size * dL/dz_r. DDP then averages parameter gradients over ranks,
which gives exactly dL/dtheta of the single-process loss over the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when torch.distributed is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGatherWithGrad(torch.autograd.Function):
    """Concatenate every rank's (B, ...) tensor along dim 0; gradients flow back to their rank."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rank = dist.get_rank()
        ctx.batch = tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' tensors concatenated in rank order (identity when not distributed).
    Every rank must pass the same shape; see `gather_batch` for uneven batches."""
    if not is_distributed():
        return tensor
    return _AllGatherWithGrad.apply(tensor)


def all_gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All ranks' tensors concatenated in rank order, without gradient (masks, sizes)."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def gather_batch(embeddings: dict, masks: dict | None) -> tuple[dict, dict | None]:
    """Gather every entry of `embeddings` (with gradient) and `masks` across ranks.

    Ranks may hold different batch sizes (e.g. the last batch): each is padded to the largest,
    and padded rows are masked out, so they never act as positives or negatives.
    """
    if not is_distributed():
        return embeddings, masks
    any_tensor = next(iter(embeddings.values()))
    local = any_tensor.shape[0]
    sizes = all_gather_no_grad(torch.tensor([local], device=any_tensor.device))
    largest = int(sizes.max())
    padded = largest != int(sizes.min())
    out_masks: dict = {}
    out_embeddings: dict = {}
    for key, value in embeddings.items():
        mask = masks.get(key) if masks is not None else None
        if mask is None and (padded or masks is not None):
            mask = torch.ones(local, dtype=torch.bool, device=value.device)
        if padded:
            assert mask is not None  # made just above whenever padded
            value = torch.cat([value, value.new_zeros(largest - local, *value.shape[1:])])
            mask = torch.cat([mask, mask.new_zeros(largest - local)])
        out_embeddings[key] = all_gather_with_grad(value)
        if mask is not None:
            out_masks[key] = all_gather_no_grad(mask.to(torch.uint8)).bool()
    return out_embeddings, (out_masks if out_masks else None)
