"""Published numbers as data: `published.csv`, shipped with the package, one row per checkpoint x
benchmark x direction (R@1, R@5, R@10, R@1%, AP in percent, empty where unpublished), with the
gallery and protocol each was measured with and its source. Only figures from the papers as
recorded in the project's reference notes; nothing is estimated.

`compare` puts our metrics beside a checkpoint's published row and the difference, for
``geobridge evaluate --published NAME``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

METRICS = ("R@1", "R@5", "R@10", "R@1%", "AP")


@dataclass(frozen=True)
class PublishedRow:
    """One published figure set: a checkpoint on one benchmark setting in one direction."""

    checkpoint: str
    method: str
    benchmark: str
    setting: str
    direction: str
    metrics: dict[str, float]
    gallery: str
    protocol: str
    released: str
    source: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        """A flat dict (metrics as text, empty when unpublished) for tables and model cards."""
        return {
            "checkpoint": self.checkpoint,
            "method": self.method,
            "benchmark": self.benchmark,
            "setting": self.setting,
            "direction": self.direction,
            **{m: f"{self.metrics[m]:.2f}" if m in self.metrics else "" for m in METRICS},
            "gallery": self.gallery,
            "protocol": self.protocol,
            "released": self.released,
            "source": self.source,
            "note": self.note,
        }


@dataclass(frozen=True)
class Comparison:
    """Ours vs published for one direction and metric; `ours` is None when we did not measure it."""

    direction: str
    metric: str
    ours: float | None
    published: float

    @property
    def difference(self) -> float | None:
        return None if self.ours is None else self.ours - self.published


def _parse(text: str) -> list[PublishedRow]:
    rows = []
    for record in csv.DictReader(io.StringIO(text)):
        metrics = {m: float(record[m]) for m in METRICS if record.get(m, "").strip()}
        rows.append(
            PublishedRow(
                checkpoint=record["checkpoint"],
                method=record["method"],
                benchmark=record["benchmark"],
                setting=record["setting"],
                direction=record["direction"],
                metrics=metrics,
                gallery=record["gallery"],
                protocol=record["protocol"],
                released=record["released"],
                source=record["source"],
                note=record["note"],
            )
        )
    return rows


def published_rows() -> list[PublishedRow]:
    """Every row of the shipped table, in file order."""
    text = (resources.files("geobridge.evaluation") / "published.csv").read_text(encoding="utf-8")
    return _parse(text)


def checkpoints() -> list[str]:
    """The checkpoint names the table knows, in file order."""
    return list(dict.fromkeys(row.checkpoint for row in published_rows()))


def rows_for(checkpoint: str) -> list[PublishedRow]:
    """The rows of one checkpoint; a ValueError lists the known names."""
    rows = [row for row in published_rows() if row.checkpoint == checkpoint]
    if not rows:
        raise ValueError(f"no published numbers for {checkpoint!r}; known: {', '.join(checkpoints())}")
    return rows


def compare(checkpoint: str, dataset: str, ours: Mapping[str, Mapping[str, float]]) -> list[Comparison]:
    """Our metrics (direction -> metric -> value, in percent) beside the published ones of
    `checkpoint` on `dataset`, one entry per published figure; a ValueError if the checkpoint
    has no row for that dataset."""
    rows = [row for row in rows_for(checkpoint) if row.benchmark == dataset]
    if not rows:
        have = sorted({row.benchmark for row in rows_for(checkpoint)})
        raise ValueError(
            f"{checkpoint!r} has published numbers for {', '.join(have)}, not for dataset {dataset!r}"
        )
    out = []
    for row in rows:
        measured = ours.get(row.direction, {})
        for metric, value in row.metrics.items():
            out.append(Comparison(row.direction, metric, measured.get(metric), value))
    return out
