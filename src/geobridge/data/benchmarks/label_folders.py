"""Datasets stored as ``<folder>/<label>/<image>`` trees (University-1652, SUES-200).

The label is the building or place folder name; queries match gallery items with their label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geobridge.data.benchmarks.base import TrainingPair, list_images
from geobridge.views import Direction


@dataclass
class LabelledImages:
    """Images found in a ``<folder>/<label>/<image>`` tree (torchvision ImageFolder style)."""

    labels: list[str]
    paths: list[Path]


def scan_label_folders(folder: Path) -> LabelledImages:
    """Every image of ``folder/<label>/``, labels and label folders sorted by name."""
    labels: list[str] = []
    paths: list[Path] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for image in list_images(sub):
            labels.append(sub.name)
            paths.append(image)
    return LabelledImages(labels=labels, paths=paths)


def pairs_by_label(
    direction: Direction, queries: LabelledImages, references: LabelledImages
) -> list[TrainingPair]:
    """Pair every query image with every reference image of the same label."""
    by_label: dict[str, list[Path]] = {}
    for label, path in zip(references.labels, references.paths):
        by_label.setdefault(label, []).append(path)
    return [
        TrainingPair(label, direction.query, direction.gallery, reference_path=ref, query_path=path)
        for label, path in zip(queries.labels, queries.paths)
        for ref in by_label.get(label, [])
    ]
