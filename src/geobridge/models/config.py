"""Typed model configuration: which towers exist, which view uses which tower, the common space.

A `ModelConfig` is all that is needed to rebuild a model's architecture (weights come from the
saved safetensors). Unknown keys are errors, so a typo in a preset or an override names the key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geobridge.models.eval_transform import EvalTransform
from geobridge.views import View

#: Backends a tower can be built with; each is registered in `geobridge.models.registry`.
Backend = Literal[
    "tiny-cnn", "tiny-vit", "tiny-text", "hf-clip", "open-clip", "timm", "sentence-transformers"
]
Modality = Literal["image", "text"]

_TEXT_ONLY = {"tiny-text", "sentence-transformers"}
_IMAGE_ONLY = {"tiny-cnn", "tiny-vit", "timm"}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TowerConfig(_Strict):
    """One encoder ("tower"): its backend, where its weights come from and its input format.

    `source` is backend-specific: a hub id or local directory (hf-clip, sentence-transformers),
    an open_clip or timm model name. `options` are keyword arguments for the backend's builder
    (tiny: widths and depths; timm: model kwargs; open-clip: `pretrained` tag). `arch` is filled
    in by the backend after building: the architecture needed to rebuild it offline.
    """

    backend: Backend
    modality: Modality | None = None
    source: str | None = None
    pretrained: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    arch: dict[str, Any] | None = None
    image_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    max_length: int | None = None

    @field_validator("image_size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        if isinstance(value, int):
            return (value, value)
        return value

    @model_validator(mode="after")
    def _modality_of_backend(self) -> TowerConfig:
        implied = "text" if self.backend in _TEXT_ONLY else "image" if self.backend in _IMAGE_ONLY else None
        if self.modality is None:
            if implied is None:
                raise ValueError(f"backend {self.backend!r} needs modality: 'image' or 'text'")
            object.__setattr__(self, "modality", implied)
        elif implied is not None and self.modality != implied:
            raise ValueError(f"backend {self.backend!r} is a {implied} tower, not {self.modality}")
        return self


class ModelConfig(_Strict):
    """A multi-view model: named towers, the view -> tower mapping, and the shared space.

    Views that map to the same tower name share that tower's parameters (and its projection),
    e.g. Sample4Geo / GLEAM-C share one image encoder between query and reference views.
    `projection`: "auto" adds a linear map only for towers whose width differs from
    `embed_dim`; "always" adds one to every tower; "none" requires every width to equal it.
    `view_image_sizes` gives a view its own input size (height, width; an int is square) instead
    of its tower's `image_size`, so one shared tower takes several sizes: Sample4Geo's ConvNeXt
    sees 384 x 384 satellite tiles beside 384 x 768 (VIGOR) or 140 x 768 (CVUSA, CVACT)
    panoramas. The tower must accept that size (a CNN does; a ViT with fixed position
    embeddings does not).
    `eval_transforms` pins a view's evaluation preprocessing to a released model's own (resize
    kernel, crop, mean/std; see `geobridge.models.eval_transform`); converted checkpoints set it.
    Entries for views the model does not encode are ignored (so `keep_views` may drop towers).
    """

    name: str = "custom"
    embed_dim: int = Field(256, gt=0)
    towers: dict[str, TowerConfig]
    image_towers: dict[View, str]
    text_tower: str | None = None
    projection: Literal["auto", "always", "none"] = "auto"
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = Field(100.0, gt=0)
    view_image_sizes: dict[View, tuple[int, int]] = Field(default_factory=dict)
    eval_transforms: dict[View, EvalTransform] = Field(default_factory=dict)

    @field_validator("image_towers", "eval_transforms", mode="before")
    @classmethod
    def _parse_views(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {View.parse(k): v for k, v in value.items()}
        return value

    @field_validator("view_image_sizes", mode="before")
    @classmethod
    def _parse_view_sizes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {View.parse(k): (v, v) if isinstance(v, int) else v for k, v in value.items()}
        return value

    @field_validator("view_image_sizes")
    @classmethod
    def _positive_sizes(cls, value: dict[View, tuple[int, int]]) -> dict[View, tuple[int, int]]:
        for view, size in value.items():
            if min(size) < 1:
                raise ValueError(
                    f"view_image_sizes[{view.value!r}] must be positive (height, width), got {size}"
                )
        return value

    @model_validator(mode="after")
    def _towers_exist(self) -> ModelConfig:
        for view, tower in self.image_towers.items():
            if view is View.TEXT:
                raise ValueError("image_towers cannot map the text view; use text_tower")
            if tower not in self.towers:
                raise ValueError(
                    f"view {view.value!r} uses tower {tower!r}, which is not in towers ({sorted(self.towers)})"
                )
            if self.towers[tower].modality != "image":
                raise ValueError(f"view {view.value!r} uses tower {tower!r}, which is a text tower")
        if self.text_tower is not None:
            if self.text_tower not in self.towers:
                raise ValueError(f"text_tower {self.text_tower!r} is not in towers ({sorted(self.towers)})")
            if self.towers[self.text_tower].modality != "text":
                raise ValueError(f"text_tower {self.text_tower!r} is an image tower")
        unknown = [v.value for v in self.view_image_sizes if v not in self.image_towers]
        if unknown:
            have = ", ".join(v.value for v in self.image_towers)
            raise ValueError(
                f"view_image_sizes names {', '.join(unknown)}, which no image tower encodes "
                f"(image_towers has: {have})"
            )
        used = set(self.image_towers.values()) | ({self.text_tower} if self.text_tower else set())
        unused = sorted(set(self.towers) - used)
        if unused:
            raise ValueError(f"towers {unused} are not used by any view; remove them or map a view to them")
        return self

    def image_size(self, view: View | str) -> tuple[int, int] | None:
        """The input size (height, width) of `view`: its `view_image_sizes` entry, else its tower's
        `image_size` (None until the tower is built when the preset leaves it to the backend)."""
        view = View.parse(view)
        if view in self.view_image_sizes:
            return self.view_image_sizes[view]
        if view not in self.image_towers:
            raise ValueError(f"model {self.name!r} has no image tower for view {view.value!r}")
        return self.towers[self.image_towers[view]].image_size

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (views as their names)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        """Load a JSON or YAML file; a clear error names the file and the bad key."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"model config {path} does not exist")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"model config {path} must hold a mapping at top level")
        try:
            return cls.model_validate(data)
        except Exception as err:
            raise ValueError(f"bad model config {path}: {err}") from None
