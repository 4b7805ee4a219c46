"""timm-style registries: tower backends by name, model presets by name.

Backends register a builder `build(config, *, load_weights, assets) -> Tower`; presets are the
JSON files in `geobridge/models/presets/` plus anything registered at run time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from geobridge.models.config import ModelConfig, TowerConfig

if TYPE_CHECKING:
    from geobridge.models.towers.base import Tower

TowerBuilder = Callable[..., "Tower"]

_BACKENDS: dict[str, TowerBuilder] = {}
_PRESETS: dict[str, Callable[[], ModelConfig]] = {}


def register_backend(name: str) -> Callable[[TowerBuilder], TowerBuilder]:
    """Decorator: register a tower builder under a backend name. A name is registered once: a
    second builder under it is an error (as for benchmark loaders), never a silent overwrite."""

    def decorate(builder: TowerBuilder) -> TowerBuilder:
        known = _BACKENDS.get(name)
        if known is not None and known is not builder:
            raise ValueError(f"tower backend {name!r} is already registered by {known.__qualname__}")
        _BACKENDS[name] = builder
        return builder

    return decorate


def build_tower(config: TowerConfig, *, load_weights: bool = True, assets: Path | None = None) -> Tower:
    """Build a tower from its config. `load_weights=False` rebuilds the architecture only."""
    import geobridge.models.towers  # noqa: F401  (registers the backends)

    if config.backend not in _BACKENDS:
        raise ValueError(f"unknown tower backend {config.backend!r}; known: {sorted(_BACKENDS)}")
    return _BACKENDS[config.backend](config, load_weights=load_weights, assets=assets)


def register_preset(name: str, factory: Callable[[], ModelConfig]) -> None:
    """Register a preset: a function returning a fresh ModelConfig. A name is registered once
    (a shipped preset's name included): a second factory under it is an error."""
    _load_bundled_presets()
    known = _PRESETS.get(name)
    if known is not None and known is not factory:
        raise ValueError(f"preset {name!r} is already registered; choose another name")
    _PRESETS[name] = factory


def _preset_from_json(text: str) -> ModelConfig:
    return ModelConfig.model_validate(json.loads(text))


def _load_bundled_presets() -> None:
    folder = resources.files("geobridge.models") / "presets"
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            name = entry.name[: -len(".json")]
            text = entry.read_text(encoding="utf-8")
            _PRESETS.setdefault(name, functools.partial(_preset_from_json, text))


def list_presets() -> list[str]:
    """Names of every known preset, sorted."""
    _load_bundled_presets()
    return sorted(_PRESETS)


def preset_config(name: str) -> ModelConfig:
    """A fresh ModelConfig for a preset; a clear error lists the known names."""
    _load_bundled_presets()
    if name not in _PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]()
