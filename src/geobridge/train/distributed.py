"""``torchrun`` awareness: read RANK / WORLD_SIZE, start the process group, average gradients.

Under ``torchrun`` every process trains on its share of each global batch; the loss all-gathers
embeddings (``EdgeSet(gather=True)``) so negatives come from the global batch, and gradients are
averaged over processes after each backward, which is what DistributedDataParallel would do.
The backend is gloo on CPU and NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import torch


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistributedContext:
    """Start the process group when launched by ``torchrun`` (WORLD_SIZE > 1); else a no-op."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(
        rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def average_gradients(parameters: Iterable[torch.nn.Parameter], context: DistributedContext) -> None:
    """All-reduce and average the gradients of trainable parameters across processes."""
    if not context.enabled:
        return
    import torch.distributed as dist

    for param in parameters:
        if not param.requires_grad:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad.div_(context.world_size)


def broadcast_flag(flag: bool, context: DistributedContext) -> bool:
    """True on every process if it is true on any (so all skip a bad step together)."""
    if not context.enabled:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
