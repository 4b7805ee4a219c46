"""One place from a ranked list: a score-weighted position with a radius.

The position is the softmax-weighted mean of the top matches' positions, taken on the sphere
(mean of unit vectors, projected back), so it never leaves the area the matches span and is
right across the antimeridian. Weights are ``softmax(score / temperature)`` over cosine scores:
a clear best match pulls the estimate onto itself, a tie spreads it between the tied places.

The radius is split-conformal (Vovk et al.; Angelopoulos and Bates, 2021): on held-out queries
whose true place is known, the radius is the ``ceil((n + 1) * coverage)``-th smallest error of
the estimate, so a new query from the same distribution falls inside with probability at least
``coverage``. Without such a calibration the radius is the weighted spread of the matches around
the estimate, and ``coverage`` is None (no rate is claimed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geobridge.geo import haversine_m

DEFAULT_TOP = 5
DEFAULT_TEMPERATURE = 0.05
DEFAULT_COVERAGE = 0.8


@dataclass(frozen=True)
class Estimate:
    """Where the query probably is: a centre, a radius in metres and the rate it holds at."""

    lat: float
    lon: float
    radius_m: float
    coverage: float | None  # share of held-out queries inside radius_m; None when uncalibrated
    error_m: float | None = None  # distance to the query's true place, when known

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lat": self.lat,
            "lon": self.lon,
            "radius_m": self.radius_m,
            "coverage": self.coverage,
        }
        if self.error_m is not None:
            out["error_m"] = self.error_m
        return out


def softmax_weights(scores: Sequence[float], temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """``softmax(scores / temperature)``; the weights sum to 1 (shifted by the max for stability)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    values = np.asarray(scores, np.float64)
    if values.size == 0:
        raise ValueError("no scores to weight")
    exp = np.exp((values - values.max()) / temperature)
    return exp / exp.sum()


def weighted_position(
    lat: Sequence[float] | np.ndarray,
    lon: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
) -> tuple[float, float]:
    """The weighted mean of positions on the sphere, as (lat, lon) in degrees."""
    phi, lam = np.radians(np.asarray(lat, np.float64)), np.radians(np.asarray(lon, np.float64))
    w = np.asarray(weights, np.float64)
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    mean = (w[:, None] * xyz).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:  # antipodal matches balance out: no meaningful centre, keep the heaviest
        best = int(np.argmax(w))
        return float(lat[best]), float(lon[best])
    x, y, z = mean / norm
    return math.degrees(math.asin(max(-1.0, min(1.0, z)))), math.degrees(math.atan2(y, x))


def weighted_spread_m(
    lat: Sequence[float] | np.ndarray,
    lon: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    centre: tuple[float, float],
) -> float:
    """Weighted root-mean-square great-circle distance of the positions from ``centre``."""
    distances = haversine_m(centre[0], centre[1], np.asarray(lat, np.float64), np.asarray(lon, np.float64))
    return float(np.sqrt(np.sum(np.asarray(weights, np.float64) * np.asarray(distances) ** 2)))


def conformal_radius(errors_m: Sequence[float] | np.ndarray, coverage: float = DEFAULT_COVERAGE) -> float:
    """The smallest radius holding ``coverage`` of new queries: the ceil((n+1)c)-th smallest error.

    With too few errors for that rank (n < c / (1 - c)) the largest error is returned."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, got {coverage}")
    ordered = np.sort(np.asarray(errors_m, np.float64))
    if ordered.size == 0:
        raise ValueError("no errors to calibrate on")
    rank = min(math.ceil((ordered.size + 1) * coverage), ordered.size)
    return float(ordered[rank - 1])


def covered_fraction(errors_m: Sequence[float] | np.ndarray, radius_m: float) -> float:
    """The share of ``errors_m`` at most ``radius_m``."""
    errors = np.asarray(errors_m, np.float64)
    return float(np.mean(errors <= radius_m)) if errors.size else float("nan")


def estimate_position(
    lat: Sequence[float],
    lon: Sequence[float],
    scores: Sequence[float],
    temperature: float = DEFAULT_TEMPERATURE,
    radius_m: float | None = None,
    coverage: float | None = None,
    truth: tuple[float, float] | None = None,
) -> Estimate:
    """The estimate from the top matches' positions and scores (best first).

    ``radius_m`` and ``coverage`` come from a calibration; without them the radius is the
    weighted spread of the matches. ``truth`` (lat, lon) adds the estimate's error."""
    weights = softmax_weights(scores, temperature)
    centre = weighted_position(lat, lon, weights)
    if radius_m is None:
        radius_m, coverage = weighted_spread_m(lat, lon, weights, centre), None
    error = None if truth is None else float(haversine_m(truth[0], truth[1], centre[0], centre[1]))
    return Estimate(lat=centre[0], lon=centre[1], radius_m=float(radius_m), coverage=coverage, error_m=error)


__all__ = [
    "DEFAULT_COVERAGE",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP",
    "Estimate",
    "conformal_radius",
    "covered_fraction",
    "estimate_position",
    "softmax_weights",
    "weighted_position",
    "weighted_spread_m",
]
