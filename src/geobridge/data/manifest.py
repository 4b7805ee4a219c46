"""A torch dataset over a location manifest, and the collate function that batches it.

On-disk layout (what :func:`geobridge.records.read_manifest` reads)::

    ROOT/manifest.parquet          one row per location: id, split, lat, lon, region, text,
                                   and one column per image view (drone, street, satellite,
                                   map, ground) holding a path relative to ROOT, or null
    ROOT/<split>/<view>/<id>.png   the images (any layout works: the manifest names the files)

An item is one *location*: every requested view of it, transformed. A view the manifest lacks,
or whose file cannot be read, becomes an all-zero tensor with ``mask[view] = False``, so the
loss drops that location from the edges touching that view only. Unreadable files are counted
and named in the log once each (``ManifestDataset.unreadable``), never raised mid-epoch.
Images of another mode (grey, RGBA, palette) are converted to RGB; the view's transform sizes
them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from geobridge.images import ImageError, open_image
from geobridge.records import Location, read_manifest
from geobridge.views import View

LOGGER = logging.getLogger(__name__)

#: A transform turns an RGB PIL image into a float tensor (3, H, W).
ImageTransform = Callable[[Image.Image], torch.Tensor]


def default_transform(size: int) -> ImageTransform:
    """Resize to ``size`` x ``size`` (panoramas to ``size`` x ``2*size``) and scale to [0, 1]."""

    def transform(image: Image.Image) -> torch.Tensor:
        width = size * 2 if image.width >= 2 * image.height else size
        image = image.resize((width, size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    return transform


class ManifestDataset(Dataset):
    """The locations of one split of a manifest, each item holding every requested view.

    Args:
        manifest: path to ``manifest.parquet`` (or its folder), or a list of locations.
        split: which split to keep (``None`` keeps all rows).
        views: the views to load; ``View.TEXT`` yields the location's text.
        transforms: per image view, PIL image -> tensor (3, H, W); all items of a view must
            come out the same size so they batch.
        joint_augment: optional callable ``(images: dict[View, Tensor], rng) -> dict`` applied
            after the transforms (see :mod:`geobridge.data.transforms`); its randomness comes
            from ``rng``, seeded by (seed, epoch, index), so it replays exactly on resume.
            Random ``transforms`` (colour jitter) are seeded by the same triple.
        seed: base seed of the item's random draws.
        sources: per location, the label of the training source it comes from (a mixture's
            samplers balance by it); default: all ``""``.
    """

    def __init__(
        self,
        manifest: str | Path | Sequence[Location],
        split: str | None,
        views: Sequence[View | str],
        transforms: Mapping[View, ImageTransform],
        joint_augment: Callable[[dict[View, torch.Tensor], np.random.Generator], dict[View, torch.Tensor]]
        | None = None,
        seed: int = 0,
        sources: Sequence[str] | None = None,
    ) -> None:
        if isinstance(manifest, (str, Path)):
            locations = read_manifest(manifest, split=split)
        else:
            locations = [loc for loc in manifest if split is None or loc.split == split]
        if not locations:
            raise ValueError(
                f"no locations in split {split!r} of the manifest; check the split name "
                "(train, val, test) or render a world with `geobridge world OUT`"
            )
        self.locations: list[Location] = locations
        self.sources: list[str] = [""] * len(locations) if sources is None else [str(x) for x in sources]
        if len(self.sources) != len(locations):
            raise ValueError(f"sources has {len(self.sources)} entries for {len(locations)} locations")
        self.views: list[View] = [View.parse(v) for v in views]
        self.image_views: list[View] = [v for v in self.views if v.is_image]
        missing = [v.value for v in self.image_views if v not in transforms]
        if missing:
            raise ValueError(f"no transform given for view(s) {', '.join(missing)}")
        self.transforms = dict(transforms)
        self.joint_augment = joint_augment
        self.seed = int(seed)
        self.epoch = 0
        self.unreadable: set[str] = set()

    def __len__(self) -> int:
        return len(self.locations)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws the next items use."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[Any, Any]:
        loc = self.locations[index]
        draws = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        images: dict[View, torch.Tensor | None] = {}
        # Random per-view transforms (torchvision's ColorJitter draws from torch's global RNG)
        # are seeded per item too: an item is the same in any worker, process or resumed run.
        generator = torch.default_generator
        caller_state = generator.get_state()
        generator.manual_seed(int(draws.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        try:
            for view in self.image_views:
                images[view] = self._load(loc.path(view), view)
        finally:
            generator.set_state(caller_state)
        if self.joint_augment is not None:
            present = {v: t for v, t in images.items() if t is not None}
            rng = np.random.default_rng(draws)
            present = self.joint_augment(present, rng)
            images.update(present)
        item: dict[Any, Any] = {"index": int(index), "id": loc.id, "lat": loc.lat, "lon": loc.lon}
        for view in self.image_views:
            item[view] = images[view]
        if View.TEXT in self.views:
            item[View.TEXT] = loc.text
        return item

    def _load(self, path: Path | None, view: View) -> torch.Tensor | None:
        if path is None:
            return None
        try:
            rgb = open_image(path)
        except ImageError as err:
            key = str(path)
            if key not in self.unreadable:
                self.unreadable.add(key)
                LOGGER.warning(
                    "skipping unreadable %s image %s (%s); %d unreadable so far",
                    view.value,
                    path,
                    err.problem,
                    len(self.unreadable),
                )
            return None
        return self.transforms[view](rgb)


def collate(items: list[dict[Any, Any]]) -> dict[Any, Any]:
    """Batch dataset items: ``{"index", "ids", "lat", "lon", View: (B,3,H,W), "mask": {View: (B,)},
    View.TEXT: list[str]}``. Missing or unreadable views are zeros with mask False; a view that
    no item of the batch has is ``None`` (its size is unknown) with an all-False mask."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    batch: dict[Any, Any] = {
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "ids": [it["id"] for it in items],
        "lat": torch.tensor([it["lat"] for it in items], dtype=torch.float64),
        "lon": torch.tensor([it["lon"] for it in items], dtype=torch.float64),
        "mask": {},
    }
    views = [k for k in items[0] if isinstance(k, View)]
    for view in views:
        if view is View.TEXT:
            batch[View.TEXT] = [str(it[View.TEXT]) for it in items]
            batch["mask"][View.TEXT] = torch.tensor([bool(it[View.TEXT]) for it in items])
            continue
        present = [it[view] for it in items if it[view] is not None]
        mask = torch.tensor([it[view] is not None for it in items])
        if present:
            shape = present[0].shape
            stacked = torch.zeros((len(items),) + tuple(shape), dtype=present[0].dtype)
            for row, it in enumerate(items):
                if it[view] is not None:
                    if it[view].shape != shape:
                        raise ValueError(
                            f"{view.value} images of one batch have different shapes "
                            f"{tuple(shape)} and {tuple(it[view].shape)}: the view's transform must resize"
                        )
                    stacked[row] = it[view]
        else:
            stacked = None
        batch[view] = stacked
        batch["mask"][view] = mask
    return batch
