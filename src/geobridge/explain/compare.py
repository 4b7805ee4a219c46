"""Compare the cues of a satellite image with those of a query view: which agree, which conflict.

Each rule turns one pair of cues into a :class:`CueComparison`: the satellite-side value, the
query-side value, what the query *should* show if the two images were of one place (for
ground-level views the satellite value is mapped to the street's scale by a coarse linear rule),
and a normalised distance ``|expected - observed| / tolerance``. Distance <= 1 is a matching cue,
>= 2 a conflicting one, in between neutral. The cue agreement score is the weighted mean of
``exp(-distance^2 / 2)``: 1 when everything agrees, towards 0 when nothing does.

Which cues are compared for which view is documented in :mod:`geobridge.explain.cues`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from geobridge.explain.cues import ImageCues
from geobridge.views import View

MATCH_DISTANCE = 1.0
CONFLICT_DISTANCE = 2.0
ABSENCE_KEYS = ("vegetation", "water", "built", "road", "bare")


@dataclass(frozen=True)
class CueComparison:
    """One cue seen in both images."""

    key: str  # vegetation, water, built, road, bare, roof, layout, enclosure, horizon_vegetation, horizon_water
    satellite_value: float  # fraction (0..1) or score, as measured on the satellite image
    query_value: float  # as measured on the query image
    expected_value: float  # what the query should show if both images are of one place
    distance: float  # |expected - observed| / tolerance
    weight: float
    detail: str = ""  # e.g. the roof colour names

    @property
    def status(self) -> str:
        if self.distance <= MATCH_DISTANCE:
            return "match"
        if self.distance >= CONFLICT_DISTANCE:
            return "conflict"
        return "neutral"

    @property
    def salient(self) -> bool:
        """Worth citing: not a land-cover class that is (nearly) absent from both images."""
        return (
            self.key not in ABSENCE_KEYS
            or max(self.satellite_value, self.query_value) >= 0.03
            or self.status == "conflict"
        )

    @property
    def agreement(self) -> float:
        return math.exp(-0.5 * self.distance**2)

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status, "agreement": self.agreement}


def _fraction_rule(
    key: str, sat: ImageCues, query: ImageCues, tolerance: float, weight: float
) -> CueComparison:
    s, q = sat.landcover[key], query.landcover[key]
    return CueComparison(key, s, q, s, abs(s - q) / tolerance, weight)


def _roof_rule(sat: ImageCues, query: ImageCues, weight: float) -> CueComparison | None:
    """Histogram intersection of named roof colours (only when both images show roofs)."""
    if (
        sat.landcover["built"] < 0.05
        or query.landcover["built"] < 0.05
        or not sat.roof_colours
        or not query.roof_colours
    ):
        return None
    overlap = sum(min(share, query.roof_colours.get(name, 0.0)) for name, share in sat.roof_colours.items())
    names = f"{sat.dominant_roof}/{query.dominant_roof}"
    return CueComparison("roof", 1.0, overlap, 1.0, (1.0 - overlap) / 0.3, weight, names)


def _layout_rule(sat: ImageCues, query: ImageCues, tolerance: float, weight: float) -> CueComparison:
    s, q = sat.layout.regularity, query.layout.regularity
    return CueComparison("layout", s, q, s, abs(s - q) / tolerance, weight)


def _ground_rules(sat: ImageCues, query: ImageCues) -> list[CueComparison]:
    """Satellite land cover mapped to what a ground-level view should show (coarse linear rules)."""
    sky = query.skyline
    assert sky is not None
    built = sat.landcover["built"]
    expected_sky = min(max(0.9 - 0.8 * built, 0.0), 1.0)  # dense roofs => enclosed street, less sky
    vegetation = sat.landcover["vegetation"]
    expected_green = 0.4 * vegetation  # greenery near the horizon grows with the green share from above
    rules = [
        CueComparison(
            "enclosure",
            built,
            sky.sky_fraction,
            expected_sky,
            abs(expected_sky - sky.sky_fraction) / 0.15,
            2.0,
        ),
        CueComparison(
            "horizon_vegetation",
            vegetation,
            sky.horizon_vegetation,
            expected_green,
            abs(expected_green - sky.horizon_vegetation) / 0.1,
            1.5,
        ),
    ]
    if sky.horizon_water > 0.03 or sat.landcover["water"] > 0.3:
        # water seen from the street must show from above; a large lake should reach the horizon
        expected_water = min(0.3 * sat.landcover["water"], 0.2)
        rules.append(
            CueComparison(
                "horizon_water",
                sat.landcover["water"],
                sky.horizon_water,
                expected_water,
                abs(expected_water - sky.horizon_water) / 0.05,
                1.0,
            )
        )
    return rules


def compare_cues(satellite: ImageCues, query: ImageCues) -> list[CueComparison]:
    """All comparisons for this query view (see the table in :mod:`geobridge.explain.cues`)."""
    view = View.parse(query.view)
    if view in (View.STREET, View.GROUND):
        return _ground_rules(satellite, query)
    if view is View.MAP:
        rules = [
            _fraction_rule(k, satellite, query, 0.1, w)
            for k, w in (("vegetation", 2.0), ("water", 2.0), ("built", 1.5), ("road", 1.0), ("bare", 0.5))
        ]
        rules.append(_layout_rule(satellite, query, 0.2, 0.5))
        return rules
    # drone (and any other overhead photo): the oblique frame sees a little further, so wider tolerances
    rules = [
        _fraction_rule(k, satellite, query, 0.12, w)
        for k, w in (("vegetation", 2.0), ("water", 2.0), ("built", 1.5), ("road", 1.0), ("bare", 1.0))
    ]
    roof = _roof_rule(satellite, query, 1.5)
    if roof is not None:
        rules.append(roof)
    rules.append(_layout_rule(satellite, query, 0.1, 0.5))
    return rules


def agreement_score(comparisons: list[CueComparison]) -> float:
    """Weighted mean agreement in [0, 1]; 0.5 when nothing could be compared."""
    total = sum(c.weight for c in comparisons)
    if total == 0:
        return 0.5
    return sum(c.weight * c.agreement for c in comparisons) / total
