"""Plan a training run before renting GPUs: sizes, compute and peak memory of one step.

:func:`plan_training` builds the recipe's full architecture on the ``meta`` device from random
init (no weight is downloaded or allocated), applies the recipe's freezing, and reports per
tower and in total:

* parameters and trainable parameters (unique tensors, so shared towers count once);
* forward GFLOPs per sample for each view (``torch.utils.flop_counter.FlopCounterMode``, which
  counts matmuls, convolutions and attention as 2 x multiply-accumulates; elementwise ops are
  not counted). Text is measured at the tower's ``max_length`` tokens, an upper bound;
* the estimated peak memory of one training step on one GPU at the recipe's per-GPU batch
  (``data.batch_size / gpus``; ``data.batch_size`` is the global batch), in fp32 and in bf16
  autocast, with the plain step (``optim.accumulation_steps`` splits the batch) and with the
  gradient cache (``optim.grad_cache_micro_batch``, else ``micro_batch``):

      peak = weights + gradients + Adam states + snapshot + inputs + activations + autocast copies

  weights are fp32 (autocast keeps fp32 master weights), gradients 4 bytes and Adam's two
  moments 8 bytes per *trainable* parameter; the snapshot is the trainer's in-memory copy of
  the trainable weights, buffers and Adam states for recovery from a non-finite loss
  (``good_state_every``), kept on the training device. Activations are measured, not modelled: the
  parameters are swapped for ``FakeTensorMode`` tensors on the CPU (shapes only, no memory) and
  one forward of every training view runs under ``torch.autograd.graph.saved_tensors_hooks``
  (under ``torch.autocast`` for bf16) at 1 and at 2 samples; the unique storages saved for
  backward (parameters excluded) give bytes per sample (the difference) and a fixed part (the
  bf16 weight copies autocast saves). The step then holds ``batch x per-sample + fixed``; with
  the gradient cache ``micro-batch x per-sample + fixed`` plus the batch's embeddings and their
  gradients.

Not counted: the CUDA context and library workspaces (~0.5-1 GB per GPU), allocator
fragmentation (typically < 10 %), DDP's gradient buckets (one more gradient copy per GPU under
torchrun), the transient buffers of a backward op, and PLANET's small physical head.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geobridge.train.config import TrainConfig
from geobridge.views import View

PRECISIONS = ("fp32", "bf16")
STRATEGIES = ("plain", "grad_cache")
DEFAULT_MICRO_BATCH = 8
TEXT_WORD = "bridge"  # one token in every tokenizer we ship: max_length of them fill the context


@dataclass
class ActivationFit:
    """Bytes saved for backward by one forward of every training view: per sample and fixed."""

    per_sample: int
    fixed: int


def build_meta_model(config: TrainConfig) -> Any:
    """The recipe's model on the meta device (random init: no download, no memory), frozen as
    the recipe says. A backend that cannot build on the meta device (sentence-transformers
    always reads its weights) is built on the CPU and moved there: only small towers do that."""
    from geobridge.models import create_model, load_model
    from geobridge.models.model import CONFIG_NAME
    from geobridge.train.engine import apply_freezing

    if (Path(config.model.preset) / CONFIG_NAME).is_file():
        model = load_model(config.model.preset, device="meta")
    else:
        try:
            with torch.device("meta"):
                model = create_model(config.model.preset, init="random", **config.model.overrides)
        except (RuntimeError, NotImplementedError):
            model = create_model(config.model.preset, init="random", **config.model.overrides).to("meta")
    apply_freezing(model, config)
    return model


def to_fake(model: nn.Module, mode: Any) -> None:
    """Swap every parameter and buffer for a CPU fake tensor of the same shape (in place)."""
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is not None:
                with mode:
                    fake = torch.empty(param.shape, dtype=param.dtype)
                module._parameters[name] = nn.Parameter(fake, requires_grad=param.requires_grad)
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                with mode:
                    module._buffers[name] = torch.zeros(buffer.shape, dtype=buffer.dtype)


def sample_inputs(model: Any, view: View, batch: int) -> Any:
    """``batch`` inputs of ``view``: zero images at the view's size, or texts of max_length tokens."""
    if view is View.TEXT:
        length = int(model.tower(view).config.max_length or 77)
        return [" ".join([TEXT_WORD] * length)] * batch
    height, width = model.config.image_size(view)
    return torch.zeros(batch, 3, int(height), int(width))


def input_bytes(model: Any, views: list[View], batch: int) -> int:
    """Bytes of one batch's image tensors (fp32) and text token ids on the device."""
    total = 0
    for view in views:
        if view is View.TEXT:
            total += batch * int(model.tower(view).config.max_length or 77) * 8 * 2  # ids + mask, int64
        else:
            height, width = model.config.image_size(view)
            total += batch * 3 * int(height) * int(width) * 4
    return total


def _autocast(precision: str) -> Any:
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def saved_bytes(model: Any, views: list[View], batch: int, precision: str, mode: Any) -> int:
    """Bytes of the unique storages one forward of ``views`` saves for backward (parameters excluded)."""
    from torch.multiprocessing.reductions import StorageWeakRef

    params = {StorageWeakRef(p.untyped_storage()) for p in model.parameters()}
    seen: dict[StorageWeakRef, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        ref = StorageWeakRef(storage)
        if ref not in params:
            seen[ref] = max(seen.get(ref, 0), int(storage.nbytes()))
        return tensor

    with mode, _autocast(precision), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for view in views:
            model.encode(view, sample_inputs(model, view, batch))
    return sum(seen.values())


def activation_fit(model: Any, views: list[View], precision: str, mode: Any) -> ActivationFit:
    """Saved bytes at 1 and 2 samples -> bytes per sample and a fixed part."""
    one = saved_bytes(model, views, 1, precision, mode)
    two = saved_bytes(model, views, 2, precision, mode)
    per_sample = max(two - one, 0)
    return ActivationFit(per_sample=per_sample, fixed=max(one - per_sample, 0))


def forward_gflops(model: Any, view: View, mode: Any) -> float:
    """Forward GFLOPs of one sample of ``view`` (tower + projection)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with mode, torch.no_grad(), counter:
        model.encode(view, sample_inputs(model, view, 1))
    return counter.get_total_flops() / 1e9


def _count(parameters: Any) -> tuple[int, int]:
    unique = {id(p): p for p in parameters}.values()
    return sum(p.numel() for p in unique), sum(p.numel() for p in unique if p.requires_grad)


def plan_training(config: TrainConfig, gpus: int = 1, micro_batch: int | None = None) -> dict[str, Any]:
    """The plan of ``config`` on ``gpus`` GPUs as a JSON-ready dict (see the module docstring)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from geobridge.train.engine import training_views

    if gpus < 1:
        raise ValueError(f"gpus must be at least 1, got {gpus}")
    model = build_meta_model(config)
    views = training_views(config, model)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    to_fake(model, mode)

    towers: dict[str, Any] = {}
    view_flops: dict[str, float] = {}
    for name, tower in model.towers.items():
        own = [v for v in views if model.tower_name(v) == name]
        count, trainable = _count(list(tower.parameters()) + list(model.projections[name].parameters()))
        flops = {v.value: round(forward_gflops(model, v, mode), 3) for v in own}
        view_flops.update(flops)
        towers[name] = {
            "views": [v.value for v in own],
            "parameters": count,
            "trainable_parameters": trainable,
            "gflops_per_sample": flops,
        }
    parameters, trainable = _count(model.parameters())

    per_gpu = max(config.data.batch_size // gpus, 1)
    micro = min(config.optim.grad_cache_micro_batch or micro_batch or DEFAULT_MICRO_BATCH, per_gpu)
    plain_batch = -(-per_gpu // config.optim.accumulation_steps)
    weights = sum(p.numel() * 4 for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )
    gradients, optimizer = trainable * 4, trainable * 8
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    snapshot = gradients + buffers + optimizer  # the good-state copy: trainable weights, buffers, Adam
    embeddings = per_gpu * len(views) * model.embed_dim * 4 * 2  # cached embeddings + their gradients
    fits = {precision: activation_fit(model, views, precision, mode) for precision in PRECISIONS}
    peak: dict[str, dict[str, int]] = {}
    for precision, fit in fits.items():
        base = weights + gradients + optimizer + snapshot + fit.fixed
        peak[precision] = {
            "plain": base + input_bytes(model, views, plain_batch) + fit.per_sample * plain_batch,
            "grad_cache": base + input_bytes(model, views, per_gpu) + fit.per_sample * micro + embeddings,
        }
    return {
        "recipe": config.model.preset,
        "views": [v.value for v in views],
        "gpus": gpus,
        "global_batch": config.data.batch_size,
        "per_gpu_batch": per_gpu,
        "micro_batch": micro,
        "accumulation_steps": config.optim.accumulation_steps,
        "towers": towers,
        "parameters": parameters,
        "trainable_parameters": trainable,
        "gflops_per_sample": view_flops,
        "peak_memory_bytes": peak,
        "memory_components_bytes": {
            "weights_fp32": weights,
            "gradients": gradients,
            "adam_states": optimizer,
            "good_state_snapshot": snapshot,
            "activations_per_sample": {p: f.per_sample for p, f in fits.items()},
            "activations_fixed": {p: f.fixed for p, f in fits.items()},
        },
        "not_counted": "CUDA context and workspaces (~0.5-1 GB/GPU), allocator fragmentation, DDP gradient "
        "buckets (+1 gradient copy under torchrun), transient backward buffers",
    }
