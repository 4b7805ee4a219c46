"""Atomic training checkpoints that resume a run exactly.

Layout of one checkpoint directory (``OUT/checkpoints/last`` or ``OUT/checkpoints/best``)::

    model/            the model as ``save_pretrained`` writes it (config + safetensors);
                      loadable on its own by ``geobridge.models.load_model``
    train_state.pt    optimizer, scheduler and grad-scaler state, step / epoch / batch position
                      in the epoch, best metric so far, and every random state (python, numpy,
                      torch CPU, CUDA). Plain tensors and containers only: it loads with
                      ``torch.load(weights_only=True)``, never unpickling code.
    config.yaml       the run's configuration, for people
    <name>/           each extra trained module beside the model, as its own ``save_pretrained``
                      writes it; PLANET runs have ``physical_head/`` (``PhysicalHead.from_pretrained``)

The whole directory is written beside the target and renamed into place; a kill at any instant
leaves a complete checkpoint that :func:`read_checkpoint` (or :func:`recover_checkpoint`) puts back.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geobridge.atomic import atomic_directory, recover_directory

STATE_FILE = "train_state.pt"
MODEL_DIR = "model"


@dataclass
class TrainPosition:
    """Where a run is: optimizer steps done, current epoch, batches consumed in that epoch."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def capture_rng_state() -> dict[str, Any]:
    """Every random state the training loop touches, as weights-only-loadable containers."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": _to_lists(random.getstate()),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(numpy_state["state"]["key"], dtype=np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    target: str | Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    position: TrainPosition,
    best: float | None,
    config_yaml: str,
    extra: dict[str, Any] | None = None,
    modules: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (replacing an older one only once complete).

    ``modules``: extra trained modules (folder name -> object with ``save_pretrained``) saved
    beside ``model/``, e.g. ``{"physical_head": head}``."""
    target = Path(target)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp / MODEL_DIR)
        for name, module in (modules or {}).items():
            if name in (MODEL_DIR, STATE_FILE, "config.yaml"):
                raise ValueError(f"module folder name {name!r} clashes with the checkpoint layout")
            module.save_pretrained(tmp / name)
        state = {
            "position": {
                "step": position.step,
                "epoch": position.epoch,
                "batch_in_epoch": position.batch_in_epoch,
            },
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "best": best,
            "rng": capture_rng_state(),
            "extra": extra or {},
        }
        torch.save(state, tmp / STATE_FILE)
        (tmp / "config.yaml").write_text(config_yaml, encoding="utf-8")
    return target


@dataclass
class LoadedCheckpoint:
    """A checkpoint read back: the position, best metric and the raw state for the engine."""

    position: TrainPosition
    best: float | None
    state: dict[str, Any]
    model_dir: Path


def recover_checkpoint(path: str | Path) -> Path:
    """Put back the complete checkpoint a kill during its replacement left aside; sweep leftovers."""
    recover_directory(path)
    return Path(path)


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read ``train_state.pt`` (weights only); errors name the file and what to do."""
    path = recover_checkpoint(path)
    state_file = path / STATE_FILE
    if not state_file.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path} (missing {STATE_FILE}); start without resume or point to a "
            "run's checkpoints/last directory"
        )
    state = torch.load(state_file, map_location="cpu", weights_only=True)
    pos = state["position"]
    return LoadedCheckpoint(
        position=TrainPosition(
            step=int(pos["step"]), epoch=int(pos["epoch"]), batch_in_epoch=int(pos["batch_in_epoch"])
        ),
        best=state.get("best"),
        state=state,
        model_dir=path / MODEL_DIR,
    )


def load_model_weights(model: Any, model_dir: Path) -> None:
    """Copy the weights saved in ``model_dir`` (safetensors) into ``model`` in place."""
    from safetensors.torch import load_file

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors weights in {model_dir}")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    if missing:
        # save_pretrained may store only some tensors (e.g. a frozen pretrained tower by reference);
        # load what is there, and demand that every *trainable* tensor is present
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        lost = [k for k in missing if k in trainable]
        if lost:
            raise ValueError(f"checkpoint {model_dir} lacks trainable tensors: {', '.join(lost[:5])}")
    model.load_state_dict(weights, strict=False)


def load_module_weights(module: torch.nn.Module, directory: Path) -> None:
    """Copy every tensor saved in ``directory/*.safetensors`` into ``module`` in place (strict:
    an extra module such as the physical head is always saved whole)."""
    from safetensors.torch import load_file

    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no .safetensors weights in {directory}; the checkpoint was written without this module"
        )
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    module.load_state_dict(weights, strict=True)


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value
