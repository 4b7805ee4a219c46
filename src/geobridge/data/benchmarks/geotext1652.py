"""GeoText-1652 (Chu et al., ECCV 2024): University-1652 images with natural-language descriptions.

On-disk layout (the Hugging Face release ``truemanv5666/GeoText1652_Dataset``; ``root`` holds
the JSON files)::

    root/
      train.json
      test_951_version.json
      images/                           # image root: the JSON "image" paths are relative to it
        train/<building>/image-01.jpeg ...
        test/.../<building>/image-01.jpeg ...

Each JSON entry describes one image::

    {"image_id": "0839/image-43.jpeg", "image": "train/0839/image-43.jpeg",
     "caption": "In the center of the image is ..." (a list of captions in the test file),
     "sentences": ["...", ...], "bboxes": [[cx, cy, w, h], ...]}

The building id is the first component of ``image_id``. An image's view follows
University-1652's names: ``image-NN.*`` is a drone image, ``<building>.*`` the satellite image,
anything else a street image (an assumption: the JSON carries no view field). When ``images/``
is absent, the JSON paths are resolved against ``root``. A listed gallery image that is missing
is skipped and counted (:meth:`Benchmark.existing`).

``match`` chooses the test setting:

* ``"official"`` (default): GeoText-1652's own evaluation (``Method/re_bbox.py``,
  ``itm_eval``). One direction, ``T2I`` (a :class:`~geobridge.views.PooledDirection`): the
  queries are every caption of every test image, the gallery is ONE set of every test image
  of every view present (drone, satellite, street; each view embedded by its own tower), ids
  are building ids, protocol ``geotext``. That protocol scores both directions from the pair:
  text -> image, reported as ``img_r1/5/10`` (and ``R@1/5/10``) in the ``T2I`` result, and
  image -> text (every test image a query among the texts), reported as ``txt_r1/5/10`` (and
  ``R@1/5/10``) in an ``I2T`` result; both carry ``r_mean``, the mean of the six. The official names are the code's: ``img_r*`` are TEXT
  queries retrieving images and ``txt_r*`` IMAGE queries retrieving texts, although the
  README labels the ``txt`` column "Text Query". The official scores are ITM re-ranked top-k;
  a dual encoder is scored by cosine over everything (see :mod:`geobridge.evaluation.protocols`).
* ``"image"``: per view, text to each view present (``T2D``, ``T2S``, ``T2P``); the queries
  of ``T2X`` are the captions of the X images, ids are image ids (a text's positive is the one
  image it was written for) and the protocol is ``pairs``. Not the official protocol.
* ``"building"``: per view (``T2D``, ``T2S``, ``T2P``); the queries are the captions of the
  drone images, ids are building ids, and every gallery image of the building is a positive
  (protocol ``u1652``).

``ImageSet.extra`` of the queries holds each caption's ``image_ids``, ``sentences`` and ``bboxes``.

Get it from https://github.com/MultimodalGeo/GeoText-1652 (Google Drive or Hugging Face).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from geobridge.data.benchmarks.base import Benchmark, ImageSet, pool_image_sets
from geobridge.data.benchmarks.registry import register_benchmark
from geobridge.data.places import TrainingPlace
from geobridge.views import AnyDirection, Direction, PooledDirection, View

ANNOTATION_FILES: dict[str, str] = {"train": "train.json", "test": "test_951_version.json"}
MATCHES: dict[str, str] = {"official": "geotext", "image": "pairs", "building": "u1652"}
IMAGE_VIEWS: tuple[View, ...] = (View.DRONE, View.SATELLITE, View.STREET)
_DRONE_NAME = re.compile(r"^image-\d+$")


@dataclass
class GeoTextImage:
    """One annotated image: its ids, view, file and texts."""

    image_id: str
    building: str
    view: View
    path: Path
    captions: list[str]
    sentences: list[str] = field(default_factory=list)
    bboxes: list = field(default_factory=list)


def image_view(image_id: str, building: str) -> View:
    """University-1652 naming: ``image-NN`` drone, ``<building>`` satellite, other names street."""
    stem = Path(image_id).stem
    if _DRONE_NAME.match(stem):
        return View.DRONE
    if stem == building:
        return View.SATELLITE
    return View.STREET


@register_benchmark
class GeoText1652(Benchmark):
    """GeoText-1652: the official text <-> all-images evaluation, or per-view text-to-image."""

    name = "geotext1652"
    homepage = "https://github.com/MultimodalGeo/GeoText-1652"
    layout = (
        "train.json, test_951_version.json and images/{train,test}/... "
        "(JSON 'image' paths are relative to images/)."
    )

    def __init__(
        self, root: str | Path, split: str = "test", match: str = "official", annotations: str | None = None
    ) -> None:
        super().__init__(root)
        if split not in ANNOTATION_FILES:
            raise ValueError(f"GeoText-1652 split must be 'train' or 'test', got {split!r}")
        if match not in MATCHES:
            raise ValueError(f"GeoText-1652 match must be 'official', 'image' or 'building', got {match!r}")
        self.split, self.match = split, match
        self.default_protocol = MATCHES[match]
        self.annotation_file = self.root / (annotations or ANNOTATION_FILES[split])
        self.image_root = self.root / "images" if (self.root / "images").is_dir() else self.root
        self._images: dict[str, list[GeoTextImage]] = {}
        self.require(self.annotation_file, "annotation file")

    def images(self, annotation_file: Path | None = None) -> list[GeoTextImage]:
        """Every annotated image of a JSON file (default: the evaluated split's)."""
        source = annotation_file or self.annotation_file
        key = str(source)
        if key not in self._images:
            self.require(source, "annotation file")
            try:
                entries = json.loads(source.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{source} is not valid JSON: {err}") from err
            out = []
            for number, entry in enumerate(entries):
                try:
                    image_id, image = str(entry["image_id"]), str(entry["image"])
                except (KeyError, TypeError):
                    raise ValueError(f"{source}: entry {number} lacks 'image_id' or 'image'") from None
                captions = entry.get("caption", [])
                captions = [captions] if isinstance(captions, str) else [str(c) for c in captions]
                building = image_id.split("/")[0]
                out.append(
                    GeoTextImage(
                        image_id=image_id,
                        building=building,
                        view=image_view(image_id, building),
                        path=self.image_root / image,
                        captions=captions,
                        sentences=[s for s in entry.get("sentences") or [] if s],
                        bboxes=list(entry.get("bboxes") or []),
                    )
                )
            self._images[key] = out
        return self._images[key]

    def check_direction(self, direction: AnyDirection | str) -> AnyDirection:
        try:
            return super().check_direction(direction)
        except ValueError as err:
            if self.match != "official":
                raise
            raise ValueError(
                f"{err} (the official setting); the per-view directions T2D, T2S, T2P need "
                "match='image' or 'building' (--option match=image)"
            ) from None

    def directions(self) -> list[AnyDirection]:
        present = {img.view for img in self.images()}
        views = tuple(v for v in IMAGE_VIEWS if v in present)
        if self.match == "official":
            return [PooledDirection(View.TEXT, views)]
        return [Direction(View.TEXT, v) for v in views]

    def _label(self, image: GeoTextImage) -> str:
        return image.image_id if self.match == "image" else image.building

    def query_set(self, direction: AnyDirection | str) -> ImageSet:
        direction = self.check_direction(direction)
        if self.match == "official":
            assert isinstance(direction, PooledDirection)  # the official setting defines T2I only
            sources, what = set(direction.pooled), "test image"
        else:
            assert isinstance(direction, Direction)  # match=image/building: T2D, T2S, T2P
            view = direction.gallery if self.match == "image" else View.DRONE
            sources, what = {view}, f"{view.value} image"
        ids, texts, image_ids, sentences, bboxes = [], [], [], [], []
        for image in self.images():
            if image.view not in sources:
                continue
            for caption in image.captions:
                ids.append(self._label(image))
                texts.append(caption)
                image_ids.append(image.image_id)
                sentences.append(image.sentences)
                bboxes.append(image.bboxes)
        if not texts:
            raise ValueError(f"{self.annotation_file} has no caption of a {what}")
        return ImageSet(
            view=View.TEXT,
            ids=ids,
            texts=texts,
            extra={"image_ids": image_ids, "sentences": sentences, "bboxes": bboxes},
        )

    def _view_gallery(self, view: View) -> ImageSet:
        chosen = [img for img in self.images() if img.view is view]
        keep = self.keep_existing([img.path for img in chosen], f"{view.value} image")
        chosen = [chosen[i] for i in keep]
        return ImageSet(
            view=view, ids=[self._label(img) for img in chosen], paths=[img.path for img in chosen]
        )

    def gallery_parts(self, direction: AnyDirection | str) -> list[ImageSet]:
        """Official: one image set per view (each embedded by its own tower), pooled in this order."""
        direction = self.check_direction(direction)
        if isinstance(direction, PooledDirection):
            return [self._view_gallery(view) for view in direction.pooled]
        return [self._view_gallery(direction.gallery)]

    def gallery_set(self, direction: AnyDirection | str) -> ImageSet:
        """The gallery; for the official ``T2I`` every view's images in one set (its ``view`` is
        the first part's, ``extra["views"]`` holds each item's view)."""
        parts = self.gallery_parts(direction)
        if len(parts) == 1:
            return parts[0]
        return pool_image_sets(parts)

    def training_places(self) -> list[TrainingPlace]:
        """Each training building as a place: its images per view, each image's caption as the
        text of that image's items (the first caption when an entry lists several)."""
        images: dict[str, dict[View, list[Path]]] = {}
        captions: dict[str, dict[Path, str]] = {}
        for img in self.images(self.root / ANNOTATION_FILES["train"]):
            images.setdefault(img.building, {}).setdefault(img.view, []).append(img.path)
            if img.captions:
                captions.setdefault(img.building, {})[img.path] = img.captions[0]
        return [
            TrainingPlace(
                id=building,
                images={v: tuple(p) for v, p in images[building].items()},
                image_texts=captions.get(building, {}),
            )
            for building in sorted(images)
        ]
