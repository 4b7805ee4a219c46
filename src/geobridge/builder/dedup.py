"""Stage 3 de-duplication: no two kept crops may share more than ``max_overlap`` of their ground.

Overlap is measured in square metres on the ground (`geobridge.geo.Footprint.overlap_fraction`:
intersection over the smaller footprint), so crops at different scales or from orthomosaics of
different resolutions are compared fairly. Greedy: candidates are taken in the given order and a
candidate is dropped when it overlaps an already kept one too much. A coarse spatial grid keeps
this near-linear on large builds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from geobridge.geo import Footprint, metres_per_degree


@dataclass(frozen=True)
class DedupDecision:
    """Whether a candidate is kept, and if not, which kept candidate it duplicates."""

    kept: bool
    duplicate_of: int | None = None
    overlap: float = 0.0


def deduplicate(footprints: Sequence[Footprint], max_overlap: float = 0.5) -> list[DedupDecision]:
    """Greedy footprint de-duplication in the given order; one decision per footprint."""
    if not footprints:
        return []
    # metres per degree of longitude shrink polewards: size cells for the most poleward footprint
    polemost = max(abs(f.centre[0]) for f in footprints)
    per_lat, per_lon = metres_per_degree(polemost)
    cell_m = max(max(f.width_m, f.height_m) for f in footprints)
    cell_lat, cell_lon = cell_m / per_lat, cell_m / per_lon
    grid: dict[tuple[int, int], list[int]] = {}
    decisions: list[DedupDecision] = []
    for i, fp in enumerate(footprints):
        lat, lon = fp.centre
        key = (math.floor(lat / cell_lat), math.floor(lon / cell_lon))
        worst, worst_j = 0.0, None
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for j in grid.get((key[0] + dr, key[1] + dc), ()):
                    overlap = fp.overlap_fraction(footprints[j])
                    if overlap > worst:
                        worst, worst_j = overlap, j
        if worst > max_overlap:
            decisions.append(DedupDecision(kept=False, duplicate_of=worst_j, overlap=worst))
        else:
            grid.setdefault(key, []).append(i)
            decisions.append(DedupDecision(kept=True, overlap=worst))
    return decisions
