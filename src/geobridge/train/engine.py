"""The training loop: one plain PyTorch loop for every method (GeoBridge, GLEAM-C, Sample4Geo).

Per optimizer step the engine takes one global batch of distinct locations, embeds every view,
computes the edge-set loss and updates the trainable parameters. Options, all from
:class:`~geobridge.train.config.TrainConfig`:

* Adam / AdamW, cosine schedule with linear warm-up (one scheduler step per batch);
* AMP: fp16 (with a grad scaler) or bf16 autocast on CUDA, bf16 autocast on CPU if asked;
* gradient accumulation (the batch is split into ``accumulation_steps`` contrastive sub-batches)
  and gradient caching (the batch keeps all its negatives; see :mod:`.gradcache`);
* freezing all but the last N blocks of each tower (``model.freeze_all_but_last``);
* under torchrun, BatchNorm over the global batch on CUDA (``model.sync_batchnorm``; on CPU each
  rank uses its own share's statistics, see :mod:`.distributed`);
* a non-finite loss or gradient skips the step, restores the last good in-memory state
  (weights, buffers, optimizer) and logs it; too many in a row stop the run with an error;
* atomic ``last`` / ``best`` checkpoints and exact resume (weights, optimizer, scheduler,
  scaler, random states and the sampler's position), CSV + TensorBoard logs, tqdm progress;
* validation through a caller-given ``validate_fn(model) -> dict[str, float]`` every
  ``val_every`` steps and at each epoch end; the best checkpoint is kept by ``best_metric``;
* PLANET (a ``physical:`` section): the loss is :class:`~geobridge.losses.planet.PlanetObjective`
  on satellite + text instead of the edge set; its physical head is trained with the model,
  kept in the in-memory good state and saved in every checkpoint as ``physical_head/`` beside
  ``model/`` (so resume stays exact). The frozen-text cache is off for these runs: the head
  needs the text tower's token states, which the cache does not keep.
* Sample4Geo's similarity hard negatives (``data.sim_neighbours`` > 0): at the start of every
  epoch from ``data.sim_from_epoch`` on, the training locations are embedded with the current
  model (eval mode, no grad, see :mod:`.mining`) and each one's most similar other locations are
  packed into its batch. Sample4Geo mines after each evaluation; the epoch start is that point
  here (validation runs at each epoch end). The table is saved in ``last`` checkpoints: a run
  resumed inside an epoch reuses it, one resumed at an epoch start mines it again from the
  restored weights, so resume stays exact.
* Phases (``phases:``, GLEAM-C's pre-train-then-fuse): one run goes through the phases in order,
  each with its own dataset, views, edge set and peak learning rate (see
  :meth:`~geobridge.train.config.TrainConfig.phase_configs`). Epochs and steps are counted over
  the whole run, so the phase is a function of the epoch and a run resumes across a phase
  boundary like anywhere else. The optimizer (and its moments) carries over; the learning rate
  follows one warm-up + cosine *per phase* (a new source deserves its own warm-up), all in one
  ``LambdaLR`` over the global step.

Train sits below retrieval and evaluation: validation metrics come in through the callback.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from geobridge.data.manifest import ManifestDataset, collate
from geobridge.data.samplers import (
    ModalityBalancedBatchSampler,
    SimilarityNeighbourBatchSampler,
    UniqueLocationBatchSampler,
)
from geobridge.data.sources import has_coordinates, training_items
from geobridge.data.transforms import JointAugment
from geobridge.losses.planet import PlanetObjective, build_planet_objective
from geobridge.models.device import resolve_device
from geobridge.models.embedder import EmbedOptions
from geobridge.records import Location, ManifestError
from geobridge.train.batches import batch_size_of, encode_views, masks_on, present_views, slice_batch
from geobridge.train.checkpoint import (
    TrainPosition,
    load_model_weights,
    load_module_weights,
    read_checkpoint,
    recover_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from geobridge.train.config import ConfigError, TrainConfig
from geobridge.train.distributed import (
    DistributedContext,
    apply_sync_batchnorm,
    average_gradients,
    broadcast_flag,
    init_distributed,
)
from geobridge.train.frozen_cache import cached_frozen_text_tower
from geobridge.train.good_state import LastGoodState
from geobridge.train.gradcache import grad_cache_step
from geobridge.train.logging import TrainLogger
from geobridge.train.mining import mine_similarity_neighbours
from geobridge.train.schedule import warmup_cosine
from geobridge.views import View

LOGGER = logging.getLogger(__name__)

ValidateFn = Callable[[Any], dict[str, float]]


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


@dataclass
class TrainResult:
    """What a run did. ``losses`` has one entry per step (NaN for skipped steps)."""

    output_dir: Path
    model: Any
    step: int
    epoch: int
    losses: list[float] = field(default_factory=list)
    best: float | None = None
    skipped_steps: list[int] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from_step: int | None = None
    unreadable_images: list[str] = field(default_factory=list)
    seconds: float = 0.0
    physical_head: Any = None  # the trained PLANET head (runs with a ``physical:`` section)

    @property
    def final_loss(self) -> float | None:
        finite = [x for x in self.losses if math.isfinite(x)]
        return finite[-1] if finite else None


@dataclass
class _Phase:
    """One phase of a run as built: its effective config, data, sampler, views and loss, and
    where it sits in the run (global epochs and steps)."""

    index: int
    name: str  # "phase 2 (fuse-all-sources)"
    config: TrainConfig
    first_epoch: int
    epochs: int
    first_step: int
    steps_per_epoch: int
    dataset: ManifestDataset
    sampler: UniqueLocationBatchSampler
    views: list[View]
    loss_fn: Callable[..., Any] | None

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def phased_warmup_cosine(
    optimizer: torch.optim.Optimizer,
    phases: list[tuple[int, int, float]],
    warmup_steps: int,
    min_ratio: float,
) -> torch.optim.lr_scheduler.LambdaLR:
    """One warm-up + cosine per phase; ``phases`` holds (first step, steps, lr / base lr) each.
    A ``LambdaLR`` over the global step, so its state dict resumes exactly across phases."""
    from geobridge.train.schedule import warmup_cosine_factor

    def factor(step: int) -> float:
        first, length, ratio = next((p for p in reversed(phases) if step >= p[0]), phases[0])
        return ratio * warmup_cosine_factor(step - first, length, warmup_steps, min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class _StepOutcome:
    loss: float
    terms: dict[str, float]
    finite: bool


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_model(config: TrainConfig) -> Any:
    """The model the config names (a ``geobridge.models`` preset or saved directory), from
    random weights with ``model.init=random``."""
    from geobridge.models import create_model

    init: Literal["random"] | None = "random" if config.model.init == "random" else None
    return create_model(config.model.preset, init=init, **config.model.overrides)


def build_loss(config: TrainConfig, distributed: bool) -> Callable[..., Any]:
    """The config's edge-set loss; under torchrun it gathers embeddings across processes."""
    from geobridge.losses import edge_set

    options = dict(config.loss.options)
    if distributed:
        options.setdefault("gather", True)
    return edge_set(config.loss.edge_set, **options)


PHYSICAL_HEAD_DIR = "physical_head"  # folder of the PLANET head inside a checkpoint, beside model/
SIMILARITY_STATE = "similarity_neighbours"  # key of the mined table in a checkpoint's extra state
AMP_PRECISION = {
    "auto": "auto",
    "off": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
}  # optim.amp -> engine precision


def build_physical_objective(
    config: TrainConfig, model: Any, views: list[View], distributed: bool
) -> PlanetObjective:
    """PLANET's objective (fresh physical head sized for the model's text tower) for a config
    with a ``physical:`` section; checks the options it cannot honour."""
    assert config.physical is not None
    if set(views) != {View.SATELLITE, View.TEXT}:
        raise ConfigError(
            "a physical (PLANET) run trains text -> satellite: set data.views=[satellite, text] "
            f"(got {', '.join(v.value for v in views)})"
        )
    if config.optim.grad_cache_micro_batch is not None:
        raise ConfigError(
            "optim.grad_cache_micro_batch is not supported with physical (PLANET); unset it "
            "or use optim.accumulation_steps"
        )
    return build_planet_objective(model, config.physical, gather=distributed)


def modality_group(location: Any, views: list[View]) -> str:
    """The modality of a location for balanced sampling: which of ``views`` it has, e.g.
    ``street+satellite`` (a VIGOR pair) or ``drone+satellite`` (a University-1652 one)."""
    return "+".join(v.value for v in views if location.has(v)) or "none"


def training_views(config: TrainConfig, model: Any) -> list[View]:
    """The configured views, checked against the towers the model has."""
    available = set(model.views) | ({View.TEXT} if getattr(model, "has_text", False) else set())
    views = config.view_list
    missing = [v.value for v in views if v not in available]
    if missing:
        have = ", ".join(sorted(v.value for v in available))
        raise ConfigError(
            f"data.views asks for {', '.join(missing)} but the model has towers for {have} only"
        )
    return views


def apply_freezing(model: Any, config: TrainConfig) -> None:
    """``model.freeze_all_but_last`` for every tower, then per-view limits (``freeze_views``):
    a view's tower keeps only its last N blocks trainable (plus its head when N > 0)."""
    if config.model.freeze_all_but_last is not None:
        model.freeze_all_but_last(config.model.freeze_all_but_last)
    for name, n_blocks in config.model.freeze_views.items():
        model.freeze_view(View.parse(name), n_blocks)


class Trainer:
    """One training run; :func:`train` is the usual way in."""

    def __init__(
        self,
        config: TrainConfig,
        model: Any | None = None,
        validate_fn: ValidateFn | None = None,
        loss_fn: Callable[..., Any] | None = None,
        dataset: ManifestDataset | None = None,
        text_features: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.config = config
        # frozen text features shared with other runs of the same frozen text tower (see frozen_cache)
        self.text_features = text_features if text_features is not None else {}
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        seed_everything(config.seed)
        self.dist: DistributedContext = init_distributed(self.device)
        self.model = model if model is not None else build_model(config)
        apply_freezing(self.model, config)
        synced = apply_sync_batchnorm(self.model, config.model.sync_batchnorm, self.device, self.dist)
        if synced:
            LOGGER.info("model.sync_batchnorm: %d BatchNorm layers normalise over the global batch", synced)
        self.model.to(self.device)
        self.views = training_views(config, self.model)
        self.objective: PlanetObjective | None = None
        if config.physical is not None:
            if loss_fn is not None:
                raise ConfigError(
                    "a physical (PLANET) config builds its own loss; do not pass loss_fn as well"
                )
            self.objective = build_physical_objective(config, self.model, self.views, self.dist.enabled)
        self.physical_head = self.objective.physical_head if self.objective is not None else None
        self.loss_fn = (
            loss_fn
            if loss_fn is not None or self.objective is not None
            else build_loss(config, self.dist.enabled)
        )
        self.validate_fn = validate_fn
        phase_configs = config.phase_configs()
        if len(phase_configs) > 1 and (dataset is not None or loss_fn is not None):
            raise ConfigError(
                "a config with phases builds each phase's dataset and loss; do not pass dataset or loss_fn"
            )
        self.phases: list[_Phase] = []
        first_epoch = first_step = 0
        for index, phase_config in enumerate(phase_configs):
            phase = self._build_phase(index, phase_config, first_epoch, first_step, dataset)
            self.phases.append(phase)
            first_epoch += phase.epochs
            first_step += phase.steps
        self.total_epochs = first_epoch
        self.total_steps = first_step
        if config.optim.max_steps is not None:
            self.total_steps = min(self.total_steps, config.optim.max_steps)
        self._enter_phase(self.phases[0])
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        if self.physical_head is not None:
            self.parameters += list(self.physical_head.parameters())
        if not self.parameters:
            raise ConfigError("the model has no trainable parameters (check model.freeze_all_but_last)")
        self.optimizer = self._build_optimizer()
        if len(self.phases) == 1:
            self.scheduler = warmup_cosine(
                self.optimizer, self.total_steps, config.optim.warmup_steps, config.optim.min_lr_ratio
            )
        else:
            spans = [(p.first_step, p.steps, p.config.optim.lr / config.optim.lr) for p in self.phases]
            self.scheduler = phased_warmup_cosine(
                self.optimizer, spans, config.optim.warmup_steps, config.optim.min_lr_ratio
            )
        self.autocast, self.scaler = self._build_amp()
        self._backward = self._choose_backward()
        self.output_dir = Path(config.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.logger = (
            TrainLogger(self.output_dir / "logs", tensorboard=config.tensorboard)
            if self.dist.is_main
            else None
        )
        self.position = TrainPosition()
        self.best: float | None = None
        self.frozen_views: set[View] = set()
        self.last_good = LastGoodState(self.model, self.optimizer, self.physical_head)
        self._saved_at: int | None = None
        self._validated_at: int | None = None
        self._sim_epoch: int | None = None  # epoch whose start mined the sampler's similarity table
        self._restored_sim: tuple[int, np.ndarray] | None = None  # (epoch, table) read from a checkpoint

    # --- set-up ------------------------------------------------------------------------------
    def _build_phase(
        self,
        index: int,
        config: TrainConfig,
        first_epoch: int,
        first_step: int,
        dataset: ManifestDataset | None,
    ) -> _Phase:
        single = config is self.config
        views = self.views if single else training_views(config, self.model)
        data = dataset if dataset is not None else self._build_dataset(config, views)
        sampler = self._build_sampler(config, data, views)
        label = self.config.phases[index].name if self.config.phases else ""
        phase = _Phase(
            index=index,
            name=f"phase {index + 1}" + (f" ({label})" if label else ""),
            config=config,
            first_epoch=first_epoch,
            epochs=config.optim.epochs,
            first_step=first_step,
            steps_per_epoch=len(sampler),
            dataset=data,
            sampler=sampler,
            views=views,
            loss_fn=self.loss_fn if single else build_loss(config, self.dist.enabled),
        )
        if phase.steps_per_epoch == 0:
            where = "" if single else f" of {phase.name}"
            places = len({loc.id for loc in data.locations})
            items = f" ({len(data)} items)" if places != len(data) else ""
            raise ConfigError(
                f"data.batch_size={config.data.batch_size} fills no batch from the {places} training "
                f"places{items}{where}: a batch holds each place at most once; lower data.batch_size"
            )
        return phase

    def _enter_phase(self, phase: _Phase) -> None:
        """Train on ``phase``'s data, views and loss from now on."""
        current = getattr(self, "phase", None)
        if current is phase:
            return
        if current is not None:
            LOGGER.info("step %d: entering %s of %d", self.position.step, phase.name, len(self.phases))
        self.phase = phase
        self.dataset = phase.dataset
        self.sampler = phase.sampler
        self.views = phase.views
        self.loss_fn = phase.loss_fn
        self.steps_per_epoch = phase.steps_per_epoch
        self.frozen_views = set()

    def _phase_of(self, epoch: int) -> _Phase:
        return next((p for p in reversed(self.phases) if epoch >= p.first_epoch), self.phases[0])

    def _build_dataset(self, config: TrainConfig, views: list[View]) -> ManifestDataset:
        """The items of every training source of ``config`` (see :mod:`geobridge.data.sources`),
        each knowing the label of its source (``dataset.sources``, for mixtures)."""
        cfg = config
        sections = cfg.data.source_sections()
        if not sections:
            raise ConfigError(
                "no training data: set data.manifest=PATH/manifest.parquet, "
                "data.dataset=NAME data.root=DIR, or data.sources"
            )
        labels = [section.spec().label for section in sections]
        if len(set(labels)) < len(labels):
            raise ConfigError(
                f"data.sources labels must differ (got {', '.join(labels)}); set a name for each"
            )
        locations: list[Location] = []
        sources: list[str] = []
        for section in sections:
            spec = section.spec()
            try:
                found = training_items(spec, views, split=cfg.data.train_split)
            except (ValueError, ManifestError) as err:
                raise ConfigError(f"training source {spec.label}: {err}") from None
            if len(sections) > 1:  # the same id in two datasets is two places
                found = [replace(loc, id=f"{spec.label}/{loc.id}") for loc in found]
            locations += found
            sources += [spec.label] * len(found)
        if cfg.data.max_locations is not None:
            locations, sources = locations[: cfg.data.max_locations], sources[: cfg.data.max_locations]
        transforms = {v: self.model.image_transform(v, train=True) for v in views if v.is_image}
        augment = None
        if cfg.data.flip_p > 0 or cfg.data.rotate_p > 0:
            augment = JointAugment(
                flip_p=cfg.data.flip_p,
                rotate_p=cfg.data.rotate_p,
                north_up=frozenset(View.parse(v) for v in cfg.data.north_up_views),
            )
        return ManifestDataset(
            locations, None, views, transforms, joint_augment=augment, seed=cfg.seed, sources=sources
        )

    def _build_sampler(
        self, config: TrainConfig, dataset: ManifestDataset, views: list[View]
    ) -> UniqueLocationBatchSampler:
        cfg = config.data
        locs = dataset.locations
        sections = cfg.source_sections()
        if cfg.gps_neighbours > 0 and not has_coordinates(locs):
            lacking = sorted(
                {
                    src
                    for src, loc in zip(dataset.sources, locs)
                    if not (math.isfinite(loc.lat) and math.isfinite(loc.lon))
                }
            )
            raise ConfigError(
                f"data.gps_neighbours={cfg.gps_neighbours} packs GPS neighbours, which need "
                f"coordinates; {', '.join(lacking)} has none for some locations. Set "
                "data.gps_neighbours=0 (similarity mining, data.sim_neighbours, works without them)"
            )
        kind: Any = UniqueLocationBatchSampler
        if len(sections) > 1:
            if cfg.gps_neighbours or cfg.sim_neighbours:
                raise ConfigError(
                    "a mixture of data.sources gives each source its share of every batch and packs "
                    "no hard negatives: set data.gps_neighbours=0 and data.sim_neighbours=0"
                )
            weights = {s.spec().label: s.weight for s in sections}
            kind = partial(ModalityBalancedBatchSampler, groups=dataset.sources, weights=weights)
        elif cfg.sim_neighbours > 0:
            kind = partial(SimilarityNeighbourBatchSampler, sim_neighbours=cfg.sim_neighbours)
        elif cfg.balance_modalities:
            kind = partial(ModalityBalancedBatchSampler, groups=[modality_group(loc, views) for loc in locs])
        return kind(
            keys=[loc.id for loc in locs],
            batch_size=cfg.batch_size,
            seed=config.seed,
            lat=[loc.lat for loc in locs],
            lon=[loc.lon for loc in locs],
            neighbours=cfg.gps_neighbours,
            near=cfg.gps_near,
            ring=cfg.gps_ring,
            drop_last=True,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )

    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config.optim
        kind = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        return kind(self.parameters, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)

    def _build_amp(self) -> tuple[Callable[[], Any], Any]:
        mode = self.config.optim.amp
        cuda = self.device.type == "cuda"
        if mode == "auto":
            mode = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "off"
        if mode == "off":
            return nullcontext, None
        if mode == "fp16":
            if not cuda:
                raise ConfigError("optim.amp=fp16 needs a CUDA device; use optim.amp=bf16 or off on CPU")
            return partial(torch.autocast, "cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")
        return partial(torch.autocast, self.device.type, dtype=torch.bfloat16), None

    # --- state ---------------------------------------------------------------------------------
    def resume_if_possible(self) -> int | None:
        last = self.checkpoint_dir / "last"
        if self.config.resume:
            recover_checkpoint(last)  # every rank: a rank that finds it done by another goes on
        if not (self.config.resume and (last / "train_state.pt").exists()):
            return None
        checkpoint = read_checkpoint(last)
        load_model_weights(self.model, checkpoint.model_dir)
        self.model.to(self.device)
        if self.physical_head is not None:
            load_module_weights(self.physical_head, last / PHYSICAL_HEAD_DIR)
            self.physical_head.to(self.device)
        state = checkpoint.state
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.position = checkpoint.position
        self.best = checkpoint.best
        mined = (state.get("extra") or {}).get(SIMILARITY_STATE)
        if mined is not None:
            self._restored_sim = (int(mined["epoch"]), mined["table"].numpy())
        restore_rng_state(state["rng"])
        if self.logger is not None:
            self.logger.resume_at(self.position.step)
        message = (
            f"resuming from step {self.position.step} (epoch {self.position.epoch}, "
            f"batch {self.position.batch_in_epoch}) of {last}"
        )
        LOGGER.info(message)
        if self.dist.is_main:
            print(message, file=sys.stderr)
        return self.position.step

    def save(self, name: str) -> Path | None:
        if name == "last":
            self._saved_at = self.position.step
        if not self.dist.is_main:
            return None
        return save_checkpoint(
            self.checkpoint_dir / name,
            self.model,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.position,
            self.best,
            self.config.to_yaml(),
            extra=self._checkpoint_extra(),
            modules={PHYSICAL_HEAD_DIR: self.physical_head} if self.physical_head is not None else None,
        )

    def _checkpoint_extra(self) -> dict[str, Any]:
        """The similarity table in use (and the epoch that mined it), so resume reuses it."""
        table = (
            self.sampler.similarity_table
            if isinstance(self.sampler, SimilarityNeighbourBatchSampler)
            else None
        )
        if table is None or self._sim_epoch is None:
            return {}
        return {SIMILARITY_STATE: {"epoch": self._sim_epoch, "table": torch.from_numpy(table.copy())}}

    def _prepare_neighbours(self, epoch: int) -> None:
        """At an epoch start from ``data.sim_from_epoch`` on: give the sampler this epoch's
        similarity table, mined now with the current weights (or, when resuming inside the
        epoch, the one its start mined, read from the checkpoint)."""
        cfg = self.phase.config.data
        if not isinstance(self.sampler, SimilarityNeighbourBatchSampler) or epoch < cfg.sim_from_epoch:
            return
        if self._sim_epoch == epoch and self.sampler.similarity_table is not None:
            return
        restored, self._restored_sim = self._restored_sim, None
        if self.position.batch_in_epoch > 0 and restored is not None and restored[0] == epoch:
            table = restored[1]
        else:
            if self.position.batch_in_epoch > 0:
                LOGGER.warning(
                    "resuming inside epoch %d without its mined neighbours in the checkpoint; mining "
                    "them again from the restored weights (the rest of the epoch may differ)",
                    epoch,
                )
            query, reference = (View.parse(v) for v in cfg.similarity_views)
            options = EmbedOptions(
                batch_size=cfg.batch_size,
                precision=AMP_PRECISION[self.config.optim.amp],
                progress=self.config.progress and self.dist.is_main,
            )
            table = mine_similarity_neighbours(
                self.model, self.dataset.locations, query, reference, pool=cfg.sim_pool, options=options
            )
        self.sampler.set_similarity_neighbours(table)
        self._sim_epoch = epoch

    # --- one step ---------------------------------------------------------------------------------
    def _step(self, batch: dict[Any, Any]) -> _StepOutcome:
        cfg = self.config.optim
        self.optimizer.zero_grad(set_to_none=True)
        n = batch_size_of(batch)
        parts = max(1, min(cfg.accumulation_steps, n))
        edges = np.linspace(0, n, parts + 1).round().astype(int)
        scale = self.scaler.scale if self.scaler is not None else (lambda loss: loss)
        loss_sum = 0.0
        terms: dict[str, float] = {}
        for start, stop in zip(edges[:-1], edges[1:]):
            chunk = slice_batch(batch, int(start), int(stop)) if parts > 1 else batch
            views = present_views(chunk, self.views)
            weight = float(stop - start) / n
            total, out_terms, finite = self._backward(chunk, views, weight, scale)
            finite = not broadcast_flag(not finite, self.dist)
            if not finite:
                return _StepOutcome(loss=float(total.detach()), terms={}, finite=False)
            loss_sum += float(total.detach()) * weight
            for name, value in out_terms.items():
                terms[name] = terms.get(name, 0.0) + float(value.detach()) * weight
        average_gradients(self.parameters, self.dist)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        else:
            grads_finite = all(
                bool(torch.isfinite(p.grad).all()) for p in self.parameters if p.grad is not None
            )
            if broadcast_flag(not grads_finite, self.dist):
                return _StepOutcome(loss=loss_sum, terms=terms, finite=False)
        if cfg.grad_clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.parameters, cfg.grad_clip_value)
        if cfg.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return _StepOutcome(loss=loss_sum, terms=terms, finite=True)

    # --- how one (sub-)batch's loss is computed and back-propagated: chosen once, at set-up ---------
    def _choose_backward(self) -> Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor], bool]]:
        """Gradient caching (``optim.grad_cache_micro_batch``), PLANET's objective (a ``physical``
        section) or the plain edge-set loss; each returns (total, terms, finite) of a sub-batch."""
        if self.config.optim.grad_cache_micro_batch is not None:
            return self._grad_cache_backward
        if self.objective is not None:
            return self._physical_backward
        return self._plain_backward

    def _grad_cache_backward(
        self, chunk: dict[Any, Any], views: list[View], weight: float, scale: Callable
    ) -> tuple:
        micro_batch = self.config.optim.grad_cache_micro_batch
        # chosen only when micro_batch is set; loss_fn is None only with PLANET, which refuses it
        assert micro_batch is not None and self.loss_fn is not None
        out = grad_cache_step(
            self.model,
            chunk,
            views,
            self.loss_fn,
            micro_batch,
            self.device,
            autocast=self.autocast,
            loss_multiplier=weight,
            scale_loss=scale,
            frozen_views=self.frozen_views,
        )
        self.frozen_views = out.frozen_views
        return out.total, out.terms, out.finite

    def _physical_backward(
        self, chunk: dict[Any, Any], views: list[View], weight: float, scale: Callable
    ) -> tuple:
        out = self._physical_loss(chunk)
        finite = bool(torch.isfinite(out.total.detach()))
        if finite and out.total.requires_grad:
            scale(out.total * weight).backward()
        return out.total, out.terms, finite

    def _plain_backward(
        self, chunk: dict[Any, Any], views: list[View], weight: float, scale: Callable
    ) -> tuple:
        with self.autocast():
            embeddings = encode_views(self.model, chunk, views, self.device)
        embeddings = {v: e.float() for v, e in embeddings.items()}
        assert self.loss_fn is not None  # None only with PLANET's objective, which has its own backward
        out = self.loss_fn(embeddings, self.model.logit_scale_value(), masks_on(chunk, views, self.device))
        finite = bool(torch.isfinite(out.total.detach()))
        if finite:
            scale(out.total * weight).backward()
        return out.total, out.terms, finite

    def _physical_loss(self, chunk: dict[Any, Any]) -> Any:
        """PLANET's loss of one (sub-)batch: itc, color, struc, tex, phy terms and the total."""
        assert self.objective is not None
        inputs = {
            View.SATELLITE: chunk[View.SATELLITE].to(self.device, non_blocking=True),
            View.TEXT: chunk[View.TEXT],
        }
        with self.autocast():
            embeddings = self.objective.embeddings(inputs)
        embeddings = {k: e.float() for k, e in embeddings.items()}
        return self.objective.loss(embeddings, masks_on(chunk, self.views, self.device))

    def _validate(self) -> dict[str, float] | None:
        if self.validate_fn is None:
            return None
        self._validated_at = self.position.step
        was_training = self.model.training
        self.model.eval()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            metrics = {k: float(v) for k, v in self.validate_fn(self.model).items()}
        self.model.train(was_training)
        if self.logger is not None:
            self.logger.log_val(self.position.step, metrics)
        key = self.config.best_metric
        if key not in metrics:
            LOGGER.warning(
                "validation returned no %r (got %s); best checkpoint not updated", key, ", ".join(metrics)
            )
            return metrics
        value = metrics[key]
        better = self.best is None or (
            value > self.best if self.config.best_mode == "max" else value < self.best
        )
        if better:
            self.best = value
            self.save("best")
        return metrics

    # --- the loop --------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg = self.config
        started = time.perf_counter()
        resumed = self.resume_if_possible()
        result = TrainResult(
            output_dir=self.output_dir,
            model=self.model,
            step=self.position.step,
            epoch=self.position.epoch,
            resumed_from_step=resumed,
            best=self.best,
        )
        self.model.train()
        if self.physical_head is not None:
            self.physical_head.train()
        self.last_good.snapshot(self.position.step)
        bar = tqdm(
            total=self.total_steps,
            initial=self.position.step,
            desc="train",
            unit="step",
            disable=not (cfg.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        # PLANET reads the text tower's token states, which the frozen-text cache does not keep
        use_cache = cfg.model.cache_frozen_text and self.objective is None
        cache = cached_frozen_text_tower(self.model, self.text_features) if use_cache else nullcontext(False)
        try:
            with cache as caching:
                if caching and any(View.TEXT in p.views for p in self.phases):  # every training text up front
                    self.model.tower(View.TEXT)(
                        [
                            loc.text
                            for p in self.phases
                            if View.TEXT in p.views
                            for loc in p.dataset.locations
                            if loc.text
                        ]
                    )
                self._run_epochs(result, bar)
            if self._saved_at != self.position.step:
                self.save("last")
        finally:
            bar.close()
            if self.logger is not None:
                self.logger.close()
        result.step = self.position.step
        result.epoch = self.position.epoch
        result.best = self.best
        result.stopped_early = self.position.step < self.total_steps
        unreadable = set().union(*(p.dataset.unreadable for p in self.phases))
        result.unreadable_images = sorted(unreadable)
        result.seconds = time.perf_counter() - started
        result.physical_head = self.physical_head
        if unreadable:
            LOGGER.warning(
                "%d unreadable images were skipped: %s", len(unreadable), ", ".join(sorted(unreadable)[:20])
            )
        return result

    def _run_epochs(self, result: TrainResult, bar: Any) -> None:
        cfg = self.config
        while self.position.epoch < self.total_epochs and self.position.step < self.total_steps:
            epoch = self.position.epoch
            self._enter_phase(self._phase_of(epoch))
            self._prepare_neighbours(epoch)
            self.sampler.set_epoch(epoch)
            self.sampler.position = self.position.batch_in_epoch
            self.dataset.set_epoch(epoch)
            loader = DataLoader(
                self.dataset,
                batch_sampler=self.sampler,
                collate_fn=collate,
                num_workers=cfg.data.num_workers,
                # a private generator: creating the loader must not draw from the global RNG
                generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch),
            )
            halted = False
            for batch in loader:
                self._train_on(batch, epoch, result, bar)
                step = self.position.step
                if step >= self.total_steps or (cfg.stop_at_step is not None and step >= cfg.stop_at_step):
                    halted = True
                    break
            if halted and self.position.batch_in_epoch < self.steps_per_epoch:
                return  # halted mid-epoch: the 'last' checkpoint resumes inside this epoch
            self.position.epoch += 1
            self.position.batch_in_epoch = 0
            if self.validate_fn is not None and self._validated_at != self.position.step:
                self._validate()  # (unless val_every just did at this step)
            if cfg.checkpoint_each_epoch or halted:
                self.save("last")
            if halted:
                return

    def _train_on(self, batch: dict[Any, Any], epoch: int, result: TrainResult, bar: Any) -> None:
        cfg = self.config
        lr = float(self.scheduler.get_last_lr()[0])  # the rate this step uses (a float: ours are)
        outcome = self._step(batch)
        self.position.batch_in_epoch += 1
        self.position.step += 1
        self.scheduler.step()
        step = self.position.step
        if outcome.finite:
            self.last_good.good_step()
            result.losses.append(outcome.loss)
            if step % cfg.optim.good_state_every == 0:
                self.last_good.snapshot(self.position.step)
        else:
            self._on_bad_step(step, outcome, result)
        if self.logger is not None and (step % cfg.log_every == 0 or step == 1):
            self.logger.log_train(
                step,
                {
                    "epoch": epoch,
                    "lr": lr,
                    "loss": outcome.loss,
                    **outcome.terms,
                    "logit_scale": float(self.model.logit_scale_value().detach()),
                },
            )
        bar.update(1)
        if outcome.finite:
            bar.set_postfix(loss=f"{outcome.loss:.4f}", lr=f"{lr:.2e}")
        if cfg.val_every and step % cfg.val_every == 0:
            self._validate()
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            self.save("last")

    def _on_bad_step(self, step: int, outcome: _StepOutcome, result: TrainResult) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        bad_in_row = self.last_good.bad_step()
        result.skipped_steps.append(step)
        result.losses.append(float("nan"))
        LOGGER.warning(
            "step %d: non-finite loss or gradient (loss=%s); step skipped, state of step %d restored",
            step,
            outcome.loss,
            self.last_good.step,
        )
        if bad_in_row >= self.config.optim.max_bad_steps:
            raise TrainingDiverged(
                f"{bad_in_row} consecutive steps had a non-finite loss or gradient (last at step {step}); "
                "lower optim.lr, turn off optim.amp, or check the data"
            )


def train(
    config: TrainConfig,
    model: Any | None = None,
    validate_fn: ValidateFn | None = None,
    loss_fn: Callable[..., Any] | None = None,
    dataset: ManifestDataset | None = None,
    text_features: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train as ``config`` says (resuming from ``output_dir/checkpoints/last`` when present).

    ``text_features`` (text -> feature), filled in place, lets runs of the same frozen text tower
    encode each text once between them (the demo's ablation variants share one)."""
    return Trainer(
        config,
        model=model,
        validate_fn=validate_fn,
        loss_fn=loss_fn,
        dataset=dataset,
        text_features=text_features,
    ).fit()
