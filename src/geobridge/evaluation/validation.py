"""Validation while training: every training source scored on its own query/gallery split with
its own protocol, through the same path as ``geobridge evaluate --model``.

* a benchmark source (``data.dataset=university1652``, ``vigor``, ``cvusa``, ...) is evaluated on
  the split its loader evaluates (University-1652's test galleries, CVUSA's and CVACT's val split,
  VIGOR's test split of the same mode) with the benchmark's default protocol (or the one its
  loader options choose, e.g. ``data.option.protocol=u1652-s4g``); GeoLoc and world datasets
  are evaluated on ``data.val_split``;
* a manifest source is evaluated as a world dataset on ``data.val_split`` (protocol
  ``geobridge``); a manifest without that split is not validated.

Directions are those of the benchmark between the run's training views (``data.views``).
Metrics are named ``D2S/R@1`` (``<source>/D2S/R@1`` when the run mixes several sources), plus
``mean_R@1`` over every direction: the trainer's default ``best_metric``. Lives above ``train``
(which must not import evaluation): the CLI builds it and hands it to the trainer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geobridge.data.benchmarks import Benchmark, benchmark_class, load_benchmark
from geobridge.data.benchmarks.locations import LocationBenchmark
from geobridge.data.benchmarks.world import WorldBenchmark
from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
from geobridge.train.config import SourceSection, TrainConfig
from geobridge.views import AnyDirection, View

LOGGER = logging.getLogger(__name__)

#: Metrics kept per direction.
VALIDATION_METRICS: tuple[str, ...] = ("R@1", "R@5", "AP")


@dataclass
class ValidationSet:
    """One source's evaluation split and the directions scored on it."""

    label: str
    benchmark: Benchmark
    directions: list[AnyDirection]


def validation_benchmark(section: SourceSection, val_split: str) -> Benchmark | None:
    """The benchmark a training source is validated on (None: a manifest without ``val_split``)."""
    spec = section.spec()
    if spec.manifest:
        try:
            return WorldBenchmark(spec.manifest, split=val_split)
        except ValueError:
            LOGGER.info("%s has no location in split %r: it is not validated", spec.manifest, val_split)
            return None
    options = dict(spec.options)
    if issubclass(benchmark_class(spec.dataset), LocationBenchmark):
        options.setdefault("split", val_split)
    return load_benchmark(spec.dataset, spec.root_path(), **options)


def validation_sets(config: TrainConfig) -> list[ValidationSet]:
    """Every training source's validation split with its directions among ``data.views``."""
    views = set(config.view_list)
    out = []
    for section in config.data.source_sections():
        benchmark = validation_benchmark(section, config.data.val_split)
        if benchmark is None:
            continue
        directions = [d for d in benchmark.directions() if all(v in views for v in d.views)]
        if directions:
            out.append(ValidationSet(section.spec().label, benchmark, directions))
    return out


def validation_fn(config: TrainConfig, progress: bool = False) -> Callable[[Any], dict[str, float]] | None:
    """A ``validate_fn(model) -> {"D2S/R@1": ..., "mean_R@1": ...}`` for the trainer, or None
    when no source has a validation split. Benchmarks are opened now, so a missing split file
    fails before training starts."""
    sets = validation_sets(config)
    if not sets:
        return None
    prefixed = len(config.data.source_sections()) > 1

    def validate(model: Any) -> dict[str, float]:
        have = set(model.views) | ({View.TEXT} if model.has_text else set())
        metrics: dict[str, float] = {}
        for chosen in sets:
            directions = [d for d in chosen.directions if all(v in have for v in d.views)]
            if not directions:
                continue
            results = evaluate_model_on_dataset(
                model, chosen.benchmark, directions=directions, progress=progress
            )
            prefix = f"{chosen.label}/" if prefixed else ""
            for name, result in results.items():
                for key in VALIDATION_METRICS:
                    if key in result.metrics:
                        metrics[f"{prefix}{name}/{key}"] = float(result.metrics[key])
        r1 = [v for k, v in metrics.items() if k.endswith("/R@1")]
        metrics["mean_R@1"] = sum(r1) / len(r1) if r1 else 0.0
        return metrics

    return validate
