"""The typed training configuration: YAML file + ``key=value`` overrides with dotted keys.

Every field is declared here with its type and default; an unknown key (in the file or an
override) is an error that names the key and lists the valid ones, so a typo such as
``optim.lrr=1e-4`` never silently trains with the default.

Example YAML::

    model: {preset: demo, overrides: {embed_dim: 128}}
    data: {manifest: demo/world/manifest.parquet, views: [drone, street, satellite, text], batch_size: 32}
    optim: {name: adam, lr: 1.0e-4, epochs: 5, warmup_steps: 20}
    loss: {edge_set: geobridge}
    output_dir: runs/demo

A ``physical:`` section (:class:`geobridge.losses.planet.PlanetConfig`) turns on PLANET: the
loss becomes L_itc + lambda * (L_color + L_struc + L_tex) on satellite + text, and the physical
head is trained and checkpointed beside the model (see configs/planet.yaml).
"""

from __future__ import annotations

from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from geobridge.losses.planet import PlanetConfig
from geobridge.views import View


class ConfigError(ValueError):
    """A training configuration is malformed; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSection(_Section):
    """Which model to build: a preset name of ``geobridge.models`` or a saved model directory."""

    preset: str = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict)  # keyword overrides of ModelConfig fields
    freeze_all_but_last: int | None = None  # train only the last N blocks of each tower (+ projections)
    freeze_views: dict[str, int] = Field(default_factory=dict)  # per view: train only its tower's last N blocks
    cache_frozen_text: bool = True  # encode each text once when the text tower is entirely frozen

    @field_validator("freeze_views")
    @classmethod
    def _known_freeze_views(cls, value: dict[str, int]) -> dict[str, int]:
        return {View.parse(k).value: int(v) for k, v in value.items()}


class DataSection(_Section):
    """What to train on and how it is batched."""

    manifest: str = ""
    train_split: str = "train"
    val_split: str = "val"
    views: list[str] = Field(default_factory=lambda: ["drone", "street", "satellite", "text"])
    batch_size: int = Field(32, ge=1)  # global contrastive batch (all ranks, all micro-batches)
    num_workers: int = Field(0, ge=0)  # exact resume is guaranteed with 0 workers
    max_locations: int | None = None  # use only the first N training locations (quick runs)
    flip_p: float = Field(0.5, ge=0.0, le=1.0)  # joint left-right flip of all views
    rotate_p: float = Field(0.0, ge=0.0, le=1.0)  # joint satellite quarter-turn + panorama roll
    # views turned with the satellite by rotate_p: north-up images (add drone for orthophoto drones)
    north_up_views: list[str] = Field(default_factory=lambda: ["satellite", "map"])
    gps_neighbours: int = Field(0, ge=0)  # GPS hard negatives packed after each anchor (0 = off)
    gps_near: int = Field(8, ge=1)
    gps_ring: int = Field(0, ge=0)

    @field_validator("views")
    @classmethod
    def _known_views(cls, value: list[str]) -> list[str]:
        return [View.parse(v).value for v in value]

    @field_validator("north_up_views")
    @classmethod
    def _image_views_only(cls, value: list[str]) -> list[str]:
        views = [View.parse(v) for v in value]
        wrong = [v.value for v in views if v in (View.STREET, View.TEXT)]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} cannot be north-up (the panorama is rolled, not turned); "
                             "list satellite, map or drone (for orthophoto drone views)")
        return [v.value for v in views]


class OptimSection(_Section):
    """Optimiser, schedule, precision, and how a step is computed."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)  # caps the run length (and the schedule's length)
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)  # cosine floor as a fraction of lr
    accumulation_steps: int = Field(1, ge=1)  # split each batch into this many backward passes
    grad_cache_micro_batch: int | None = Field(None, ge=1)  # gradient caching: micro-batch size
    grad_clip_value: float | None = Field(None, gt=0)  # Sample4Geo clips by value (100)
    grad_clip_norm: float | None = Field(None, gt=0)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: fp16/bf16 on CUDA, off on CPU
    max_bad_steps: int = Field(10, ge=1)  # consecutive non-finite losses before giving up
    good_state_every: int = Field(1, ge=1)  # steps between in-memory snapshots for NaN recovery


class LossSection(_Section):
    """Which edges the contrastive loss has."""

    edge_set: str = "geobridge"  # geobridge, image-only, text-only, satellite-centric, pairs
    options: dict[str, Any] = Field(default_factory=dict)  # extra keyword options of edge_set()


class TrainConfig(_Section):
    """Everything a training run needs; see the module docstring for the YAML shape."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    loss: LossSection = Field(default_factory=LossSection)
    physical: PlanetConfig | None = None  # PLANET's physical-consistency terms (replace loss.edge_set)
    output_dir: str = "runs/train"
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    log_every: int = Field(10, ge=1)
    tensorboard: bool = True
    progress: bool = True
    val_every: int | None = Field(None, ge=1)  # steps between validations (also at each epoch end)
    best_metric: str = "mean_R@1"
    best_mode: Literal["max", "min"] = "max"
    checkpoint_every: int | None = Field(None, ge=1)  # steps between 'last' checkpoints
    checkpoint_each_epoch: bool = True  # also save 'last' at every epoch end (always at the run's end)
    resume: bool = True  # continue from output_dir/checkpoints/last when it exists
    stop_at_step: int | None = Field(None, ge=1)  # halt after this step, as if killed (tests, time budgets)

    # --- loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Validate a nested dict; errors name the dotted key."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_describe(err)) from None

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> "TrainConfig":
        """Read a YAML file (optional) and apply ``key=value`` overrides (dotted keys)."""
        data: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.exists():
                raise ConfigError(f"config file not found: {path}")
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as err:
                raise ConfigError(f"cannot parse {path} as YAML: {err}") from None
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path} must hold a mapping of config sections, not {type(loaded).__name__}")
            data = loaded
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @property
    def view_list(self) -> list[View]:
        return [View.parse(v) for v in self.data.views]


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (``1e-4``, ``[a, b]``).

    The key must exist in :class:`TrainConfig` (except below free-form dicts such as
    ``model.overrides``), so a typo fails here, naming the key.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {item!r}: expected key=value, e.g. optim.lr=1e-4")
    parts = key.split(".")
    _check_key(parts)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads "1e-4" as a string; accept it as a float
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            pass
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _check_key(parts: list[str]) -> None:
    model: type[BaseModel] | None = TrainConfig
    for depth, part in enumerate(parts):
        if model is None:
            return  # inside a free-form dict
        fields = model.model_fields
        if part not in fields:
            prefix = ".".join(parts[:depth])
            where = f" in '{prefix}'" if prefix else ""
            raise ConfigError(
                f"unknown config key '{'.'.join(parts)}'{where}; valid keys: {', '.join(sorted(fields))}"
            )
        annotation = _without_none(fields[part].annotation)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None and depth < len(parts) - 1 and not _is_dict(annotation):
            raise ConfigError(f"config key '{'.'.join(parts[:depth + 1])}' is a value, not a section")


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (an optional section such as ``physical`` takes dotted overrides)."""
    if get_origin(annotation) in (Union, UnionType):
        rest = [a for a in get_args(annotation) if a is not NoneType]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _is_dict(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict or annotation is dict


def _describe(err: ValidationError) -> str:
    lines = []
    for issue in err.errors():
        key = ".".join(str(p) for p in issue["loc"])
        if issue["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        else:
            lines.append(f"config key '{key}': {issue['msg']} (got {issue.get('input')!r})")
    return "; ".join(lines)
