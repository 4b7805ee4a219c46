"""Joint augmentations: random changes applied to all views of a location *consistently*.

Contrastive training needs the views of one location to keep showing the same place after
augmentation. Two geometric facts make that possible (Sample4Geo's trick, docs/methods.md#sample4geo-augmentation):

* **Flip.** Mirroring a north-up satellite (or map, or drone) image left-right swaps east and
  west: azimuth ``a`` (clockwise from north) becomes ``-a``. In an equirectangular panorama whose
  column ``c`` looks at azimuth ``heading + 360 * c / W``, the same mirror is a left-right flip of
  the panorama. Both views are flipped together.
* **Rotation.** Rotating the satellite image counter-clockwise by 90 degrees brings what was east
  to the top: the new "up" is the old azimuth 90, so new azimuth ``a'`` shows old azimuth
  ``a' + 90``. The panorama with column 0 at north, clockwise, must then show at column ``c``
  what was at column ``c + W/4``: ``roll(pano, -W/4)`` along the width, i.e. exactly the
  panorama rendered with heading 90. ``k`` quarter turns roll by ``-k*W/4``.

Oblique drone images have an unknown heading, so they are only flipped (a rotation of the
drone image would not be a rotation of the scene). Maps are rotated like the satellite, and so
are drone orthophotos (GeoLoc's drone view, north-up) when the drone is listed as north-up.
Everything works on tensors (3, H, W) after the per-view transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from geobridge.views import View

#: Views that are north-up orthographic images: a quarter turn of the image is a turn of the scene.
NORTH_UP_VIEWS: frozenset[View] = frozenset({View.SATELLITE, View.MAP})


def flip_views(images: Mapping[View, torch.Tensor]) -> dict[View, torch.Tensor]:
    """Mirror every image view left-right (east <-> west; panorama azimuth a -> -a)."""
    return {view: torch.flip(image, dims=(-1,)) for view, image in images.items()}


def rotate_views(
    images: Mapping[View, torch.Tensor], quarter_turns: int, north_up: frozenset[View] = NORTH_UP_VIEWS
) -> dict[View, torch.Tensor]:
    """Turn the ``north_up`` views counter-clockwise by ``quarter_turns`` * 90 degrees and roll the
    panorama so it matches (column c shows what column c + k*W/4 showed). Other views are kept."""
    k = int(quarter_turns) % 4
    out: dict[View, torch.Tensor] = {}
    for view, image in images.items():
        if k == 0:
            out[view] = image
        elif view in north_up:
            out[view] = torch.rot90(image, k, dims=(-2, -1))
        elif view is View.STREET:
            width = image.shape[-1]
            if width % 4:
                raise ValueError(
                    f"panorama width {width} is not a multiple of 4; cannot roll by quarter turns"
                )
            out[view] = torch.roll(image, shifts=-k * width // 4, dims=-1)
        else:
            out[view] = image
    return out


@dataclass(frozen=True)
class JointAugment:
    """Random consistent flip and quarter-turn of a location's views.

    ``flip_p``: probability of the joint left-right flip; ``rotate_p``: probability of a joint
    rotation by k in {1, 2, 3} quarter turns (needs a panorama width divisible by 4) of the
    ``north_up`` views (add the drone for orthophoto drone views).
    """

    flip_p: float = 0.5
    rotate_p: float = 0.0
    north_up: frozenset[View] = NORTH_UP_VIEWS

    def __call__(
        self, images: Mapping[View, torch.Tensor], rng: np.random.Generator
    ) -> dict[View, torch.Tensor]:
        out = dict(images)
        if self.flip_p > 0 and rng.random() < self.flip_p:
            out = flip_views(out)
        if self.rotate_p > 0 and rng.random() < self.rotate_p:
            out = rotate_views(out, int(rng.integers(1, 4)), self.north_up)
        return out
