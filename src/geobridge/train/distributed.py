"""``torchrun`` awareness: read RANK / WORLD_SIZE, start the process group, average gradients.

Under ``torchrun`` every process trains on its share of each global batch; the loss all-gathers
embeddings (``EdgeSet(gather=True)``) so negatives come from the global batch, and gradients are
averaged over processes after each backward, which is what DistributedDataParallel would do.
The backend is gloo on CPU and NCCL on CUDA.

BatchNorm under torchrun (``model.sync_batchnorm``, see :func:`apply_sync_batchnorm`): by
default each rank normalises with the statistics of its own share of the batch, as plain DDP
does. On CUDA ("auto" or true) BatchNorm layers become :class:`torch.nn.SyncBatchNorm`, which
normalises with the statistics of the global batch. SyncBatchNorm has no CPU kernel (torch 2.14
raises "SyncBatchNorm expected input tensor to be on GPU" in its first training forward), so on
CPU "auto" keeps per-rank statistics and true is refused before training starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from geobridge.train.config import ConfigError

# device types whose tensors SyncBatchNorm's training forward accepts (torch 2.14; not CPU)
SYNC_BATCHNORM_DEVICES = frozenset({"cuda", "xpu", "hpu"})


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
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
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


def wants_sync_batchnorm(
    mode: Literal["auto"] | bool, device: torch.device, context: DistributedContext
) -> bool:
    """Whether ``model.sync_batchnorm`` = ``mode`` converts BatchNorm on ``device`` under ``context``.

    Only a distributed run has statistics to share; "auto" converts when the device supports
    SyncBatchNorm, true does too and raises :class:`ConfigError` when it does not."""
    if mode is False or not context.enabled:
        return False
    supported = device.type in SYNC_BATCHNORM_DEVICES
    if mode is True and not supported:
        raise ConfigError(
            f"model.sync_batchnorm=true needs a GPU: torch.nn.SyncBatchNorm does not run on {device.type}; "
            "set model.sync_batchnorm=auto (each rank then normalises with its own share of the batch) "
            "or train on CUDA"
        )
    return supported


def apply_sync_batchnorm(
    model: torch.nn.Module, mode: Literal["auto"] | bool, device: torch.device, context: DistributedContext
) -> int:
    """Turn ``model``'s BatchNorm layers into SyncBatchNorm in place when :func:`wants_sync_batchnorm`;
    returns how many layers were converted. Parameters stay the same objects (their
    ``requires_grad`` and any optimizer built later see no difference) and the state-dict keys
    are unchanged, so checkpoints load into the plain model."""
    if not wants_sync_batchnorm(mode, device, context):
        return 0
    before = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # replaces children in place
    if converted is not model:
        raise TypeError("apply_sync_batchnorm converts the layers inside a model, not a bare BatchNorm layer")
    synced = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    if synced != before:  # every BatchNorm layer is expected to convert (1d/2d/3d all do)
        raise RuntimeError(f"converted {synced} of {before} BatchNorm layers to SyncBatchNorm")
    return synced
