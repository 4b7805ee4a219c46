"""Options shared by every command that runs a model: ``--device``, ``--precision``, ``--workers``.

They are checked before any work, so a machine without CUDA answers ``--device cuda`` with one
``error:`` line instead of a traceback halfway through.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from geobridge.cli.errors import fail

DEVICE_HELP = "Where the model runs: auto (CUDA when present), cpu, cuda or cuda:N."
PRECISION_HELP = "Autocast precision: auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16 or fp16 (CUDA only)."
WORKERS_HELP = (
    "Image-decoding worker processes (default: one per spare CPU core, up to 8; 0: decode in-process)."
)


def device_option() -> Any:
    return typer.Option("auto", "--device", help=DEVICE_HELP)


def precision_option() -> Any:
    return typer.Option("auto", "--precision", help=PRECISION_HELP)


def workers_option() -> Any:
    return typer.Option(None, "--workers", min=0, help=WORKERS_HELP)


def checked_device(name: str, precision: Optional[str] = None) -> str:
    """``name`` if this machine can run it (and ``precision`` there), else an ``error:`` exit."""
    from geobridge.models.device import DeviceError, resolve_device, resolve_precision

    try:
        device = resolve_device(name)
        if precision is not None:
            resolve_precision(precision, device)
    except DeviceError as err:
        raise fail(str(err)) from None
    return name
