"""Where a model runs and in which precision: ``--device`` and ``--precision`` made into torch terms.

``auto`` picks CUDA when present (under ``torchrun``, the process's own GPU, ``cuda:LOCAL_RANK``)
and the CPU otherwise. Precision ``auto`` is bf16 autocast on a CUDA device that supports it,
fp16 on older GPUs, fp32 on the CPU (CPU bf16 autocast is slower than fp32 on most CPUs and
changes the numbers); ``bf16`` may be asked for on the CPU, ``fp16`` only on CUDA.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|meta|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A device or precision name that cannot be used on this machine; the message says why."""


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a torch device, checked against the machine (one-line errors).

    ``cuda`` without an index under torchrun means this process's GPU (``LOCAL_RANK``), so the
    ranks of one machine do not all land on GPU 0. ``meta`` (shapes only) is accepted for tests.
    """
    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if not _DEVICE_PATTERN.match(text):
        raise DeviceError(f"unknown device {name!r}: expected {DEVICE_CHOICES}")
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} asked for, but this machine has no CUDA GPU; use --device cpu or auto"
            )
        if text == "cuda" and "LOCAL_RANK" in os.environ:
            text = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        index = torch.device(text).index
        if index is not None and index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(text)


def model_device(model: Any) -> torch.device:
    """The device of the model's parameters (the CPU for a model without any)."""
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    parameters = getattr(model, "parameters", None)
    if parameters is not None:
        for parameter in parameters():
            return parameter.device
    return torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> the precision used on ``device``; an impossible choice is a :class:`DeviceError`."""
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}: expected {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError(f"precision fp16 needs a CUDA device (the model is on {device}); use bf16 or fp32")
    if precision == "bf16" and device.type not in ("cuda", "cpu"):
        raise DeviceError(f"precision bf16 is not supported on {device}; use fp32")
    return precision


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """The autocast context of a resolved precision on ``device`` (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
