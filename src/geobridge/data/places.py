"""Training places and the items an epoch is made of.

A training source (a benchmark's training split, a manifest, the world) is a list of
:class:`TrainingPlace`: one place with *zero or more* images per view (University-1652 has about
54 drone images, a few street photos and one satellite image per building), optional
coordinates and a text. Contrastive training wants one image of each view per place in a
batch, so places become *items* (:class:`~geobridge.records.Location`, one image per view):

* the **epoch view** is the requested image view with the most images in all; each of its
  images is one item, so an epoch runs over the drone images of University-1652 as Sample4Geo's
  does (a place with none of them still gives one item);
* every other view of item ``k`` of a place uses that place's image ``k mod n`` (all of them are
  used, each about equally often, in a fixed order);
* a caption written for one image (GeoText-1652) is the text of the items showing that image
  (the epoch view's image first); other items carry the place's text.

Items of one place share its id, and the samplers never put two items with one id in a batch
(a duplicate would be a false negative). Coordinates are NaN when the source has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from geobridge.records import Location
from geobridge.views import View


@dataclass(frozen=True)
class TrainingPlace:
    """One place of a training source: per view its images (possibly several), text, coordinates."""

    id: str
    images: Mapping[View, Sequence[Path]]
    text: str = ""
    lat: float = math.nan
    lon: float = math.nan
    #: a caption written for one image (keyed by its path), used as the text of that image's item
    image_texts: Mapping[Path, str] = field(default_factory=dict)

    def count(self, view: View) -> int:
        return len(self.images.get(view, ()))


def epoch_view(places: Sequence[TrainingPlace], views: Sequence[View]) -> View | None:
    """The requested image view with the most images in all (the first listed on a tie), or
    None when no place has more than one image of any requested view."""
    totals = {v: sum(p.count(v) for p in places) for v in views if v.is_image}
    if not totals or all(p.count(v) <= 1 for p in places for v in totals):
        return None
    return max(totals, key=lambda v: (totals[v], -list(totals).index(v)))


def expand_places(
    places: Sequence[TrainingPlace], views: Sequence[View | str], split: str = "train", source: str = ""
) -> list[Location]:
    """The items of an epoch (see the module docstring); places without any requested view are
    left out. ``source`` (a dataset name) is kept in each item's ``region``."""
    parsed = [View.parse(v) for v in views]
    image_views = [v for v in parsed if v.is_image]
    lead = epoch_view(places, image_views)
    items: list[Location] = []
    for place in places:
        if not any(place.count(v) for v in image_views) and not (View.TEXT in parsed and place.text):
            continue
        n_items = max(1, place.count(lead)) if lead is not None else 1
        for k in range(n_items):
            paths: dict[str, Path | None] = {}
            for view in image_views:
                images = place.images.get(view, ())
                paths[view.value] = Path(images[k % len(images)]) if images else None
            captioned = [
                path
                for v in ([lead] if lead else []) + image_views
                if (path := paths[v.value]) is not None and path in place.image_texts
            ]
            text = place.image_texts[captioned[0]] if captioned else place.text
            items.append(
                Location(
                    id=place.id,
                    lat=float(place.lat),
                    lon=float(place.lon),
                    split=split,
                    region=source,
                    text=text,
                    paths=paths,
                )
            )
    return items
