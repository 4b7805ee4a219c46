"""The radius a gallery's location estimate holds at, measured on held-out queries.

``GALLERY/calibration.json`` records, per query view, the split-conformal radius
(:func:`geobridge.retrieval.estimate.conformal_radius`) of the estimate's error over held-out
queries whose true place is known: by default the other views of the held-out split (``val``
when the manifest has one, else ``test``) of the places the gallery holds. It is written by
``geobridge gallery build`` (from a manifest, unless ``--no-calibrate``) and by
``geobridge gallery calibrate --gallery G --manifest M --view drone``; it also records a 2-fold
check (radius from one half of the queries, share of the other half inside it) and the median
error. A gallery saved with another size (``gallery add``, a rebuild) drops it: its radius is
about the old contents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geobridge.atomic import atomic_write_text
from geobridge.records import Location
from geobridge.retrieval.estimate import (
    DEFAULT_COVERAGE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP,
    conformal_radius,
    covered_fraction,
    estimate_position,
)
from geobridge.views import View

if TYPE_CHECKING:
    from geobridge.retrieval.gallery import Gallery

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = 1
MAX_QUERIES = 2000  # per view: enough for a stable 80% quantile, bounded embedding time
QUERY_BATCH = 256


class CalibrationError(ValueError):
    """A calibration cannot be computed or read."""


@dataclass(frozen=True)
class ViewCalibration:
    """The estimate's radius for queries of one view, and how it was measured."""

    view: str
    radius_m: float
    coverage: float
    queries: int
    split: str
    checked_coverage: float  # 2-fold: radius from one half, share of the other half inside
    median_error_m: float


@dataclass(frozen=True)
class Calibration:
    """How a gallery turns its top matches into an estimate, and the radius per query view."""

    top: int = DEFAULT_TOP
    temperature: float = DEFAULT_TEMPERATURE
    gallery_size: int = 0
    views: dict[str, ViewCalibration] = field(default_factory=dict)
    format: int = CALIBRATION_FORMAT

    def for_view(self, view: str) -> ViewCalibration | None:
        return self.views.get(view)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        raw = json.loads(text)
        views = {name: ViewCalibration(**value) for name, value in raw.pop("views").items()}
        return cls(views=views, **raw)


def view_calibration(view: str, errors_m: Sequence[float], coverage: float, split: str) -> ViewCalibration:
    """The radius holding ``coverage`` of ``errors_m``, with its 2-fold check and median."""
    errors = np.asarray(errors_m, np.float64)
    if errors.size < 2:
        raise CalibrationError(
            f"{errors.size} {view} queries with a known place: a calibration needs at least 2"
        )
    halves = errors[0::2], errors[1::2]
    checked = [covered_fraction(halves[1 - i], conformal_radius(halves[i], coverage)) for i in (0, 1)]
    return ViewCalibration(
        view=view,
        radius_m=conformal_radius(errors, coverage),
        coverage=coverage,
        queries=int(errors.size),
        split=split,
        checked_coverage=float(np.mean(checked)),
        median_error_m=float(np.median(errors)),
    )


def held_out_split(locations: Sequence[Location]) -> str | None:
    """The split to calibrate on: ``val`` when there is one, else ``test``, else None."""
    splits = {loc.split for loc in locations}
    return next((s for s in ("val", "test") if s in splits), None)


def query_views(gallery: Gallery) -> list[str]:
    """Views worth calibrating: the model's query views other than the gallery's own."""
    return [v for v in gallery.query_views if v != gallery.info.view]


def calibrate_gallery(
    gallery: Gallery,
    locations: Sequence[Location],
    views: Sequence[str],
    coverage: float = DEFAULT_COVERAGE,
    split: str = "",
    top: int = DEFAULT_TOP,
    temperature: float = DEFAULT_TEMPERATURE,
    max_queries: int = MAX_QUERIES,
) -> Calibration:
    """Search ``locations``' images (or texts) of each view and calibrate the estimate's radius.

    Views a location lacks are skipped for it; at most ``max_queries`` per view, evenly spread.
    An earlier calibration with the same ``top`` and ``temperature`` keeps its other views."""
    found: dict[str, ViewCalibration] = {}
    for view in views:
        parsed = gallery.parse_query_view(view)
        queries = [loc for loc in locations if loc.has(parsed)]
        if len(queries) > max_queries:
            queries = [queries[i] for i in np.linspace(0, len(queries) - 1, max_queries).astype(int)]
        errors: list[float] = []
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start : start + QUERY_BATCH]
            if parsed is View.TEXT:
                results = gallery.search(text=[loc.text for loc in batch], k=top)
            else:
                results = gallery.search(images=[loc.path(parsed) for loc in batch], view=parsed, k=top)
            for loc, result in zip(batch, results):
                matches = result.matches[:top]
                estimate = estimate_position(
                    [m.lat for m in matches],
                    [m.lon for m in matches],
                    [m.score for m in matches],
                    temperature,
                    truth=(loc.lat, loc.lon),
                )
                errors.append(float(estimate.error_m or 0.0))
        found[parsed.value] = view_calibration(parsed.value, errors, coverage, split)
    earlier = gallery.calibration
    same_rule = earlier is not None and (earlier.top, earlier.temperature) == (top, temperature)
    kept = dict(earlier.views) if earlier is not None and same_rule else {}
    return Calibration(top=top, temperature=temperature, gallery_size=len(gallery), views={**kept, **found})


def save_calibration(folder: str | Path, calibration: Calibration) -> Path:
    """Write ``calibration.json`` into a gallery folder (atomically)."""
    path = Path(folder) / CALIBRATION_FILE
    atomic_write_text(path, calibration.to_json())
    return path


def load_calibration(folder: str | Path, gallery_size: int) -> Calibration | None:
    """The folder's calibration, or None when absent or made for a gallery of another size."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        calibration = Calibration.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise CalibrationError(
            f"{path} is not a valid calibration ({err}); rerun `geobridge gallery calibrate` or delete it"
        ) from None
    if calibration.format != CALIBRATION_FORMAT or calibration.gallery_size != gallery_size:
        return None
    return calibration


def describe(view: ViewCalibration) -> str:
    """One line: the radius, its rate and where it was measured."""
    return (
        f"{view.view}: {view.coverage:.0%} of held-out places within {view.radius_m:,.0f} m "
        f"({view.queries} {view.split or 'held-out'} queries; "
        f"2-fold check {view.checked_coverage:.0%}, median error {view.median_error_m:,.0f} m)"
    )
