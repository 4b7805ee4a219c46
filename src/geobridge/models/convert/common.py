"""What every converter shares: checking a renamed state dict against our model, and writing the
converted model directory (config.json, model.safetensors, provenance.json, README.md) in one
atomic step, byte-identical when run twice on the same file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geobridge.atomic import atomic_directory
from geobridge.models.config import ModelConfig
from geobridge.models.model import WEIGHTS_NAME, MultiViewModel

PROVENANCE_NAME = "provenance.json"
README_NAME = "README.md"
NOT_STATED = "not stated"


class ConversionError(ValueError):
    """The checkpoint does not match the format or architecture the converter was told."""


@dataclass
class Provenance:
    """Where a converted model came from; written as provenance.json and summarised in README.md."""

    format: str
    checkpoint: str
    sha256: str
    architecture: str
    licence: str = NOT_STATED
    source_url: str = NOT_STATED
    published: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "checkpoint": self.checkpoint,
            "sha256": self.sha256,
            "architecture": self.architecture,
            "licence": self.licence,
            "source_url": self.source_url,
            "published": self.published,
            "dropped": dict(sorted(self.dropped.items())),
            "notes": self.notes,
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _names(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_checked(model: MultiViewModel, state: dict[str, torch.Tensor], what: str) -> None:
    """Load `state` into `model` strictly; unknown, missing or mis-shaped keys are errors naming them."""
    expected = model.state_dict()
    unknown = sorted(set(state) - set(expected))
    if unknown:
        raise ConversionError(f"{what}: keys with no place in the converted model: {_names(unknown)}")
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ConversionError(f"{what}: keys the converted model needs are missing: {_names(missing)}")
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in sorted(state)
        if state[k].shape != expected[k].shape
    ]
    if wrong:
        raise ConversionError(
            f"{what}: shapes differ from the architecture (wrong --arch or sizes?): {_names(wrong, 3)}"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def build_model(config: ModelConfig, assets_dir: Path | None = None) -> MultiViewModel:
    """The architecture of `config` with no weights downloaded (they come from the checkpoint)."""
    torch.manual_seed(0)
    return MultiViewModel(config, load_weights=False, assets_dir=assets_dir)


def write_model_dir(model: MultiViewModel, out: Path, provenance: Provenance, readme: str) -> Path:
    """Write the converted model and its provenance + README into `out`, atomically."""
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        canonical_safetensors(tmp / WEIGHTS_NAME)
        text = json.dumps(provenance.to_json_dict(), indent=2, sort_keys=True) + "\n"
        (tmp / PROVENANCE_NAME).write_text(text, encoding="utf-8")
        (tmp / README_NAME).write_text(readme, encoding="utf-8")
    return out


def canonical_safetensors(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys (the writer's metadata map has a random order
    per process), so the same weights give the same bytes. The data section is left untouched."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size :])


def read_provenance(directory: Path) -> dict[str, Any] | None:
    """provenance.json of a converted model directory, or None for models we trained ourselves."""
    path = directory / PROVENANCE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
