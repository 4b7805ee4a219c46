"""create_model / load_model: one entry point for presets, config files, saved directories and
hub ids (open_clip-style config-driven factory)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geobridge.models.config import ModelConfig, TowerConfig
from geobridge.models.device import resolve_device
from geobridge.models.model import CONFIG_NAME, MultiViewModel
from geobridge.models.registry import list_presets, preset_config
from geobridge.views import GEOLOC_VIEWS, View

if TYPE_CHECKING:  # pragma: no cover
    import torch


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> MultiViewModel:
    """Load a model saved with `save_pretrained` onto ``device`` (``auto|cpu|cuda|cuda:N``)."""
    return MultiViewModel.from_pretrained(directory, device=resolve_device(device))


def hub_clip_config(hub_id: str) -> ModelConfig:
    """GeoBridge's layout for a Hugging Face CLIP id: one separate CLIP per GeoLoc view + text."""
    towers = {
        view.value: TowerConfig(backend="hf-clip", modality="image", source=hub_id) for view in GEOLOC_VIEWS
    }
    towers["text"] = TowerConfig(backend="hf-clip", modality="text", source=hub_id)
    return ModelConfig(
        name=hub_id,
        embed_dim=768,
        projection="auto",
        towers=towers,
        image_towers={view: view.value for view in GEOLOC_VIEWS},
        text_tower="text",
    )


def resolve_config(spec: str | Path | ModelConfig) -> ModelConfig:
    """A ModelConfig from a preset name, a JSON/YAML file, or a hub id (``org/name``)."""
    if isinstance(spec, ModelConfig):
        return spec.model_copy(deep=True)
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return ModelConfig.from_file(path)
    if text in list_presets():
        return preset_config(text)
    if path.exists():
        raise ValueError(
            f"{path} is neither a model config file nor a saved model directory (no {CONFIG_NAME})"
        )
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return hub_clip_config(text)
    raise ValueError(
        f"unknown model {text!r}: expected a preset ({', '.join(list_presets())}), a saved model "
        f"directory, a config file (.json/.yaml), or a Hugging Face CLIP id such as openai/clip-vit-large-patch14"
    )


def keep_views(config: ModelConfig, views: Iterable[View | str]) -> ModelConfig:
    """The config restricted to `views` (image views, plus "text" to keep the text tower);
    towers no kept view uses are dropped, so no parameter goes unused (DDP requires that)."""
    wanted = [View.parse(v) for v in views]
    missing = [v.value for v in wanted if v is not View.TEXT and v not in config.image_towers]
    if missing or (View.TEXT in wanted and config.text_tower is None):
        have = [v.value for v in config.image_towers] + (["text"] if config.text_tower else [])
        raise ValueError(f"model {config.name!r} has no tower for {missing or ['text']}; it has {have}")
    image_towers = {v: t for v, t in config.image_towers.items() if v in wanted}
    text_tower = config.text_tower if View.TEXT in wanted else None
    used = set(image_towers.values()) | ({text_tower} if text_tower else set())
    towers = {name: tower for name, tower in config.towers.items() if name in used}
    sizes = {v: size for v, size in config.view_image_sizes.items() if v in image_towers}
    return ModelConfig.model_validate(
        {
            **config.model_dump(),
            "towers": towers,
            "image_towers": image_towers,
            "text_tower": text_tower,
            "view_image_sizes": sizes,
        }
    )


Init = Literal["pretrained", "random"]


def merge_overrides(config: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    """`config` with top-level fields replaced by `overrides`; ``towers`` entries are merged key
    by key into the existing towers (so ``towers: {shared: {options: {...}}}`` changes one
    tower's options and keeps its backend and source)."""
    unknown = sorted(set(overrides) - set(ModelConfig.model_fields))
    if unknown:
        known = sorted(ModelConfig.model_fields)
        raise ValueError(f"unknown model config field(s) {unknown}; known: {known}")
    data = config.model_dump()
    for key, value in overrides.items():
        if key == "towers" and isinstance(value, dict):
            towers = dict(data["towers"])
            for name, tower in value.items():
                have = towers.get(name)
                if (
                    isinstance(have, dict)
                    and isinstance(tower, dict)
                    and tower.get("backend", have["backend"]) == have["backend"]
                ):  # the same backend: merge into its settings
                    towers[name] = _deep_merge(have, tower)
                else:
                    towers[name] = tower
            data["towers"] = towers
        else:
            data[key] = value
    return ModelConfig.model_validate(data)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_merge(out[key], value) if nested else value
    return out


def create_model(
    spec: str | Path | ModelConfig,
    *,
    pretrained: bool | None = None,
    init: Init | None = None,
    views: Iterable[View | str] | None = None,
    **overrides: Any,
) -> MultiViewModel:
    """Build a model from a preset name, a ModelConfig, a config file, a saved directory, or a
    hub id. `overrides` replace top-level ModelConfig fields (e.g. ``embed_dim=64``; ``towers``
    entries merge into the preset's, see :func:`merge_overrides`); ``init="random"`` (or
    ``pretrained=False``) builds every tower from random weights and its architecture alone, no
    download; ``views`` keeps only those views' towers (e.g. ``["drone", "satellite", "text"]``)."""
    if init is not None:
        if init not in ("pretrained", "random"):
            raise ValueError(f"init must be 'pretrained' or 'random', got {init!r}")
        if pretrained is not None and pretrained != (init == "pretrained"):
            raise ValueError(f"init={init!r} contradicts pretrained={pretrained}; give one of them")
        pretrained = False if init == "random" else None
    if not isinstance(spec, ModelConfig) and (Path(str(spec)) / CONFIG_NAME).is_file():
        if overrides or pretrained is not None or views is not None:
            raise ValueError(
                "a saved model directory cannot take overrides; change its config.json or build a new model"
            )
        return load_model(spec)
    config = resolve_config(spec)
    if overrides:
        config = merge_overrides(config, overrides)
    if views is not None:
        config = keep_views(config, views)
    if pretrained is not None:
        towers = {
            name: tower.model_copy(update={"pretrained": pretrained}) for name, tower in config.towers.items()
        }
        config = config.model_copy(update={"towers": towers})
    return MultiViewModel(config)
