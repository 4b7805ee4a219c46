"""The typed training configuration: YAML file + ``key=value`` overrides with dotted keys.

Every field is declared here with its type and default; an unknown key (in the file or an
override) is an error that names the key and lists the valid ones, so a typo such as
``optim.lrr=1e-4`` never silently trains with the default.

Example YAML::

    model: {preset: demo, overrides: {embed_dim: 128}}
    data: {manifest: demo/world/manifest.parquet, views: [drone, street, satellite, text], batch_size: 32}
    # or a benchmark in its released layout:  data: {dataset: vigor, root: /data/VIGOR, option: {mode: same}}
    # or a mixture:  data: {sources: [{dataset: university1652, root: U1652}, {dataset: vigor, root: VIGOR, weight: 2}]}
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geobridge.data.sources import SourceSpec
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
    # random: every tower from random weights and its architecture alone (no download; see
    # geobridge.models.archs); pretrained: the preset's weights, from disk or the hub
    init: Literal["pretrained", "random"] = "pretrained"
    freeze_all_but_last: int | None = None  # train only the last N blocks of each tower (+ projections)
    freeze_views: dict[str, int] = Field(
        default_factory=dict
    )  # per view: train only its tower's last N blocks
    cache_frozen_text: bool = True  # encode each text once when the text tower is entirely frozen
    # BatchNorm statistics over the global batch under torchrun (torch.nn.SyncBatchNorm). "auto":
    # on when distributed on CUDA, off otherwise (SyncBatchNorm has no CPU kernel: on CPU each
    # rank normalises with its own share's statistics). true: required, so a distributed CPU run
    # is a ConfigError; a single-process run has nothing to sync and is left as is. false: never.
    sync_batchnorm: Literal["auto"] | bool = "auto"

    @field_validator("freeze_views")
    @classmethod
    def _known_freeze_views(cls, value: dict[str, int]) -> dict[str, int]:
        return {View.parse(k).value: int(v) for k, v in value.items()}


class SourceSection(_Section):
    """One training source of ``data.sources``: a manifest, or a benchmark by name with its root
    folder and loader options (``option``), and its weight: its share of every batch."""

    name: str = ""  # label in logs and batches; default: the dataset name or the manifest's folder
    manifest: str = ""
    dataset: str = ""
    root: str = ""
    option: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSection:
        self.spec()  # raises ValueError naming what is wrong
        return self

    def spec(self) -> SourceSpec:
        return SourceSpec(
            manifest=self.manifest,
            dataset=self.dataset,
            root=self.root,
            options=dict(self.option),
            name=self.name,
        )


class DataSection(_Section):
    """What to train on and how it is batched.

    The training data is one of: ``manifest`` (a Parquet manifest), ``dataset`` + ``root`` (+
    ``option``: the loader's options, e.g. ``data.option.mode=same`` for VIGOR), or ``sources``
    (several, mixed by weight). Validation uses the same source's own query/gallery split."""

    manifest: str = ""
    dataset: str = (
        ""  # a benchmark name: university1652, sues200, vigor, cvusa, cvact, geotext1652, geoloc, world
    )
    root: str = ""  # the dataset's root folder
    option: dict[str, Any] = Field(default_factory=dict)  # the loader's options
    sources: list[SourceSection] = Field(default_factory=list)  # a weighted mixture (GLEAM-C)
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
    # Sample4Geo's similarity hard negatives: at the start of each epoch from sim_from_epoch on,
    # embed the training locations with the current model, keep each one's sim_pool most similar
    # other locations (query -> reference) and pack up to sim_neighbours of them after each anchor.
    # They replace the GPS neighbours from then on (GPS ones, if set, serve the epochs before).
    sim_neighbours: int = Field(0, ge=0)  # similarity hard negatives per anchor (0 = off)
    sim_pool: int = Field(64, ge=1)  # mined neighbours kept per location (the pool they come from)
    sim_views: list[str] | None = None  # [query, reference]; default: the first two image views
    sim_from_epoch: int = Field(1, ge=0)  # first epoch (0-based) whose start mines with the model
    # equal share of every batch for each modality group (locations grouped by the data.views they
    # have, e.g. drone+satellite vs street+satellite): GLEAM-C's balanced fusion of sources
    balance_modalities: bool = False

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
            raise ValueError(
                f"{', '.join(wrong)} cannot be north-up (the panorama is rolled, not turned); "
                "list satellite, map or drone (for orthophoto drone views)"
            )
        return [v.value for v in views]

    @field_validator("sim_views")
    @classmethod
    def _two_distinct_views(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        views = [View.parse(v).value for v in value]
        if len(views) != 2 or views[0] == views[1]:
            raise ValueError(
                "sim_views needs two different views: [query, reference], e.g. [drone, satellite]"
            )
        return views

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> DataSection:
        given = [
            name
            for name, value in (
                ("manifest", self.manifest),
                ("dataset", self.dataset),
                ("sources", self.sources),
            )
            if value
        ]
        if len(given) > 1:
            raise ValueError(
                f"give one kind of training data, not {' and '.join('data.' + g for g in given)}"
            )
        if (self.root or self.option) and not self.dataset:
            raise ValueError("data.root and data.option go with data.dataset=NAME")
        return self

    def source_sections(self) -> list[SourceSection]:
        """The training sources: ``sources``, or the one ``manifest`` / ``dataset`` names (empty
        when none is set)."""
        if self.sources:
            return list(self.sources)
        if self.manifest:
            return [SourceSection(manifest=self.manifest)]
        if self.dataset:
            return [SourceSection(dataset=self.dataset, root=self.root, option=dict(self.option))]
        return []

    @model_validator(mode="after")
    def _similarity_mining_fits(self) -> DataSection:
        if self.balance_modalities and (self.gps_neighbours or self.sim_neighbours):
            raise ValueError(
                "balance_modalities does not pack hard negatives: set gps_neighbours=0 and "
                "sim_neighbours=0, or balance_modalities=false"
            )
        if self.sim_neighbours == 0:
            return self
        if self.sim_neighbours > self.sim_pool:
            raise ValueError(
                f"sim_neighbours={self.sim_neighbours} is larger than sim_pool={self.sim_pool}, "
                "the mined neighbours it is drawn from; raise data.sim_pool"
            )
        missing = [v for v in self.similarity_views if v not in self.views]
        if missing:
            raise ValueError(f"sim_views {', '.join(missing)} not in data.views ({', '.join(self.views)})")
        return self

    @property
    def similarity_views(self) -> list[str]:
        """[query, reference] views of similarity mining: ``sim_views`` or the first two image views."""
        if self.sim_views is not None:
            return list(self.sim_views)
        images = [v for v in self.views if View.parse(v).is_image]
        if len(images) < 2:
            raise ValueError("similarity mining needs two views; set data.sim_views=[query, reference]")
        return images[:2]


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


class PhaseData(_Section):
    """What a phase may change in ``data``: its training data (replacing the run's), views and
    balancing."""

    manifest: str | None = None
    dataset: str | None = None
    root: str | None = None
    option: dict[str, Any] | None = None
    sources: list[SourceSection] | None = None
    views: list[str] | None = None
    balance_modalities: bool | None = None

    @field_validator("views")
    @classmethod
    def _known_views(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [View.parse(v).value for v in value]


class PhaseLoss(_Section):
    """What a phase may change in ``loss``."""

    edge_set: str | None = None
    options: dict[str, Any] | None = None


class PhaseOptim(_Section):
    """What a phase may change in ``optim``: its peak learning rate."""

    lr: float | None = Field(None, gt=0)


class PhaseSection(_Section):
    """One phase of a multi-phase run: its length and the few settings it changes.

    Anything else (model, batch size, optimiser kind, warm-up, precision) is shared by every
    phase; an unset field keeps the top-level value."""

    name: str = ""
    epochs: int = Field(ge=1)
    data: PhaseData = Field(default_factory=PhaseData)
    loss: PhaseLoss = Field(default_factory=PhaseLoss)
    optim: PhaseOptim = Field(default_factory=PhaseOptim)


_SOURCE_KEYS = ("manifest", "dataset", "sources")


class TrainConfig(_Section):
    """Everything a training run needs; see the module docstring for the YAML shape."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    loss: LossSection = Field(default_factory=LossSection)
    physical: PlanetConfig | None = None  # PLANET's physical-consistency terms (replace loss.edge_set)
    # phases run in order in one run (GLEAM-C: pre-train on one source, then fuse all); the run's
    # length is the sum of their epochs, so optim.epochs must stay unset. See phase_configs().
    phases: list[PhaseSection] = Field(default_factory=list)
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

    @model_validator(mode="after")
    def _phases_fit(self) -> TrainConfig:
        if not self.phases:
            return self
        if "epochs" in self.optim.model_fields_set:
            raise ValueError(
                "with phases the run lasts the sum of the phases' epochs: remove optim.epochs "
                "and set phases[i].epochs"
            )
        if self.physical is not None:
            raise ValueError("phases are not supported with a physical (PLANET) section")
        return self

    def phase_configs(self) -> list[TrainConfig]:
        """The effective configuration of each phase (its overrides applied, ``optim.epochs`` set
        to its length, no ``phases``); a run without phases is one phase: ``[self]``."""
        if not self.phases:
            return [self]
        out = []
        for number, phase in enumerate(self.phases):
            merged = self.model_dump(mode="json", exclude={"phases"})
            if any(getattr(phase.data, key) for key in _SOURCE_KEYS):  # the phase's data replaces the run's
                merged["data"].update(
                    {"manifest": "", "dataset": "", "root": "", "option": {}, "sources": []}
                )
            for section, values in (("data", phase.data), ("loss", phase.loss), ("optim", phase.optim)):
                merged[section].update(values.model_dump(mode="json", exclude_none=True))
            merged["optim"]["epochs"] = phase.epochs
            try:
                out.append(TrainConfig.model_validate(merged))
            except ValidationError as err:
                raise ConfigError(f"phases[{number}] ({phase.name or 'unnamed'}): {_describe(err)}") from None
        return out

    # --- loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Validate a nested dict; errors name the dotted key."""
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_describe(err)) from None

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
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
                raise ConfigError(
                    f"{path} must hold a mapping of config sections, not {type(loaded).__name__}"
                )
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
    ``model.overrides``), so a typo fails here, naming the key. A list of sections takes an
    index: ``phases.1.data.manifest=all/manifest.parquet`` (the phase must be listed already).
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {item!r}: expected key=value, e.g. optim.lr=1e-4")
    parts = key.split(".")
    indices = _check_key(parts)
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
    if len(parts) - 1 in indices:
        raise ConfigError(
            f"config key '{key}' names a list entry; set a field inside it, e.g. '{key}.epochs=2'"
        )
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        if depth in indices:
            node = _list_item(node, part, parts[:depth])
            continue
        child = node.get(part)
        if depth + 1 in indices:
            child = child if isinstance(child, list) else []
        elif not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[parts[-1]] = value


def _list_item(items: list[Any], part: str, path: list[str]) -> dict[str, Any]:
    name = ".".join(path)
    if int(part) >= len(items):
        have = f"entries 0..{len(items) - 1}" if items else "no entries"
        raise ConfigError(
            f"'{name}' has {have}; '{name}.{part}' does not exist (list the entry in the config file first)"
        )
    item = items[int(part)]
    if not isinstance(item, dict):
        raise ConfigError(f"'{name}.{part}' is not a section")
    return item


def _check_key(parts: list[str]) -> set[int]:
    """Check a dotted key against :class:`TrainConfig`; returns the positions that index a list."""
    indices: set[int] = set()
    model: type[BaseModel] | None = TrainConfig
    indexed = False  # the previous key was a list of sections: this part is an index into it
    for depth, part in enumerate(parts):
        if indexed:
            if not part.isdigit():
                raise ConfigError(
                    f"config key '{'.'.join(parts[:depth])}' is a list: index it, "
                    f"e.g. '{'.'.join(parts[:depth])}.0.{part}'"
                )
            indexed = False
            indices.add(depth)
            continue
        if model is None:
            return indices  # inside a free-form dict
        fields = model.model_fields
        if part not in fields:
            prefix = ".".join(parts[:depth])
            where = f" in '{prefix}'" if prefix else ""
            raise ConfigError(
                f"unknown config key '{'.'.join(parts)}'{where}; valid keys: {', '.join(sorted(fields))}"
            )
        annotation = _without_none(fields[part].annotation)
        if get_origin(annotation) is list and _is_section(get_args(annotation)[0]):
            annotation, indexed = get_args(annotation)[0], depth < len(parts) - 1
        model = annotation if _is_section(annotation) else None
        if model is None and depth < len(parts) - 1 and not _is_dict(annotation):
            raise ConfigError(f"config key '{'.'.join(parts[: depth + 1])}' is a value, not a section")
    return indices


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (an optional section such as ``physical`` takes dotted overrides)."""
    if get_origin(annotation) in (Union, UnionType):
        rest = [a for a in get_args(annotation) if a is not NoneType]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_dict(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict or annotation is dict


def _describe(err: ValidationError) -> str:
    lines = []
    for issue in err.errors():
        key = ".".join(str(p) for p in issue["loc"])
        if issue["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        elif not key:  # a check across several keys; its message names them
            lines.append(f"config: {issue['msg']}")
        else:
            lines.append(f"config key '{key}': {issue['msg']} (got {issue.get('input')!r})")
    return "; ".join(lines)
