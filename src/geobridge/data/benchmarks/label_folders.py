"""Datasets stored as ``<folder>/<label>/<image>`` trees (University-1652, SUES-200).

The label is the building or place folder name; queries match gallery items with their label,
and a label is one training place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geobridge.data.benchmarks.base import list_images
from geobridge.data.places import TrainingPlace
from geobridge.views import View


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


def places_by_label(folders: Mapping[View, LabelledImages]) -> list[TrainingPlace]:
    """One training place per label, holding every image of that label in each view's tree
    (labels sorted; a label present in one view only still makes a place)."""
    labels = sorted({label for found in folders.values() for label in found.labels})
    images: dict[str, dict[View, list[Path]]] = {label: {} for label in labels}
    for view, found in folders.items():
        for label, path in zip(found.labels, found.paths):
            images[label].setdefault(view, []).append(path)
    return [
        TrainingPlace(id=label, images={v: tuple(p) for v, p in images[label].items()}) for label in labels
    ]
