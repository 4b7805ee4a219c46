"""A gallery: geo-tagged reference embeddings in a directory that can be searched, grown and served.

Layout of a gallery directory::

    GALLERY/
      gallery.json       format version, view, index spec and search parameters, size, dimension,
                         and the model reference (path, name, config hash, weights hash)
      metadata.parquet   one row per entry, in index order: id, lat, lon, path (relative to the root),
                         size_m (the image's ground footprint side in metres, NaN when not known)
      index.npy          (exact search)  N x D float32 L2-normalised embeddings
      index.faiss        (FAISS search)  the FAISS index
      checksums.json     SHA-256 of each file above, verified on load
      calibration.json   (optional) the location estimate's radius per query view
                         (:mod:`geobridge.retrieval.calibration`)

Image paths are stored relative to the image root the gallery names in ``gallery.json``: ``root``
(relative to the gallery folder, so a folder holding both moves together) and ``root_absolute``
(where the images were when it was saved). On load the first of them that exists is used, so a
copied gallery finds its images and ``locate --json`` shows the portable relative paths. Galleries
of format 1 (absolute paths, no root) still load.

``Gallery.build`` embeds the images of one view with a model, ``Gallery.add`` embeds and
appends more (without re-embedding the rest or re-training a FAISS index), ``Gallery.load``
verifies the checksums and ``search`` answers image or text queries with named results.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.atomic import atomic_directory, atomic_write_text, recover_directory
from geobridge.geo import haversine_m
from geobridge.models.embedder import EmbedOptions, encode_images, encode_texts, input_name
from geobridge.records import Location
from geobridge.retrieval.calibration import Calibration, CalibrationError, load_calibration, save_calibration
from geobridge.retrieval.estimate import DEFAULT_TEMPERATURE, DEFAULT_TOP, Estimate, estimate_position
from geobridge.retrieval.index import Index, create_index, load_index
from geobridge.retrieval.sharded import encode_sharded
from geobridge.views import View

GALLERY_FORMAT = 2
READABLE_FORMATS = (1, 2)  # 1: absolute image paths, no root
INFO_FILE = "gallery.json"
METADATA_FILE = "metadata.parquet"
CHECKSUM_FILE = "checksums.json"
MAX_TEXT_CHARS = 2000


class GalleryError(ValueError):
    """A gallery cannot be built, read or extended as asked."""


class GalleryCorruptError(GalleryError):
    """A gallery file is missing or does not match its recorded checksum."""


class GalleryModelMismatchError(GalleryError):
    """The model given is not the one the gallery was built with."""


class QueryError(ValueError):
    """A query cannot be answered: unreadable image, unknown view, empty text, bad k."""


@dataclass(frozen=True)
class ModelReference:
    """Which model embedded a gallery: where it lives and fingerprints of its config and weights."""

    path: str | None
    name: str
    config_hash: str
    weights_hash: str
    embed_dim: int
    views: list[str]
    has_text: bool

    @classmethod
    def of(cls, model: Any, path: str | Path | None = None) -> ModelReference:
        config = _config_dict(getattr(model, "config", None))
        return cls(
            path=None if path is None else str(Path(path).resolve()),
            name=str(config.get("name") or config.get("preset") or type(model).__name__),
            config_hash=_sha256_text(json.dumps(config, sort_keys=True, default=str)),
            weights_hash=weights_hash(model),
            embed_dim=int(model.embed_dim),
            views=[View.parse(v).value for v in getattr(model, "views", [])],
            has_text=bool(getattr(model, "has_text", False)),
        )

    def mismatch(self, other: ModelReference) -> str | None:
        """Why ``other`` is not this model, or None when it is."""
        if self.config_hash != other.config_hash:
            return f"its configuration differs (gallery model {self.name!r}, given {other.name!r})"
        if self.weights_hash != other.weights_hash:
            return "its weights differ (same configuration, different trained parameters)"
        return None


@dataclass(frozen=True)
class Match:
    """One ranked gallery entry for a query."""

    rank: int
    id: str
    score: float
    lat: float
    lon: float
    path: str | None
    error_m: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class QueryResult:
    """The top-k of one query (an image path or a text), with its true position when known."""

    query: str
    view: str
    matches: list[Match]
    true_lat: float | None = None
    true_lon: float | None = None
    estimate: Estimate | None = None  # one position with a radius, from the top matches

    @property
    def best(self) -> Match:
        return self.matches[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "view": self.view,
            "true_lat": self.true_lat,
            "true_lon": self.true_lon,
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
            "matches": [m.to_dict() for m in self.matches],
        }


@dataclass
class GalleryInfo:
    """The contents of ``gallery.json``."""

    view: str
    index: str
    dim: int
    size: int
    model: ModelReference
    nprobe: int = 16
    ef_search: int = 64
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    format: int = GALLERY_FORMAT
    root: str | None = None  # the image root, relative to the gallery folder
    root_absolute: str | None = None  # the image root where the gallery was saved

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: Path) -> GalleryInfo:
        try:
            raw = json.loads(text)
            model = ModelReference(**raw.pop("model"))
            info = cls(model=model, **raw)
        except (ValueError, TypeError, KeyError) as err:
            raise GalleryCorruptError(f"{source} is not a valid gallery description: {err}") from None
        if info.format not in READABLE_FORMATS:
            raise GalleryError(
                f"{source} has gallery format {info.format}; this geobridge reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))}"
            )
        return info


class Gallery:
    """Embedded, geo-tagged references of one view, searchable by image or text queries."""

    def __init__(
        self,
        info: GalleryInfo,
        index: Index,
        metadata,
        folder: Path | None = None,
        model: Any = None,
        device: str = "auto",
    ) -> None:
        self.info = info
        self.index = index
        self.metadata = metadata.reset_index(drop=True)
        self.folder = folder
        self.root: Path | None = None  # image paths are shown relative to it (set by save and load)
        self._model = model
        self.device = device
        self._position_of_id = {str(i): n for n, i in enumerate(self.metadata["id"])}
        self.calibration: Calibration | None = None

    # ----------------------------------------------------------------- building and storage
    @classmethod
    def build(
        cls,
        model: Any,
        locations: Sequence[Location],
        view: View | str,
        out: str | Path | None = None,
        index: str = "exact",
        model_path: str | Path | None = None,
        nprobe: int = 16,
        ef_search: int = 64,
        options: EmbedOptions | None = None,
        shard_dir: str | Path | None = None,
        **option_values: Any,
    ) -> Gallery:
        """Embed the ``view`` images of ``locations`` and (when ``out`` is given) save the gallery.

        ``options`` (or its fields as keywords: ``batch_size``, ``progress``, ``tta``,
        ``precision``, ``num_workers``) tell the embedding engine how. With ``shard_dir`` (under
        torchrun) the images are sharded over the ranks (:mod:`geobridge.retrieval.sharded`);
        every rank builds the whole gallery, give ``out`` on rank 0 only."""
        view = View.parse(view)
        if not view.is_image:
            raise GalleryError(
                "a gallery holds images of one view (drone, street, satellite, map, ground), not text"
            )
        reference = ModelReference.of(model, model_path)
        if view.value not in reference.views:
            raise GalleryError(f"the model has no {view.value} tower (it has: {', '.join(reference.views)})")
        search_index = create_index(index, reference.embed_dim, nprobe=nprobe, ef_search=ef_search)
        info = GalleryInfo(
            view=view.value,
            index=search_index.spec,
            dim=reference.embed_dim,
            size=0,
            model=reference,
            nprobe=nprobe,
            ef_search=ef_search,
        )
        gallery = cls(info, search_index, _metadata_frame([], view), model=model)
        gallery._append(locations, options or EmbedOptions(**option_values), shard_dir)
        if out is not None:
            gallery.save(out)
        return gallery

    def add(
        self,
        locations: Sequence[Location],
        save: bool = True,
        options: EmbedOptions | None = None,
        **option_values: Any,
    ) -> int:
        """Embed and append new locations (ids must be new); saves in place by default. Returns how many.
        ``options`` (or its fields as keywords) as for :meth:`build`."""
        added = self._append(locations, options or EmbedOptions(**option_values))
        if save and self.folder is not None:
            self.save(self.folder)
        return added

    def _append(
        self, locations: Sequence[Location], options: EmbedOptions, shard_dir: str | Path | None = None
    ) -> int:
        import pandas as pd

        view = View.parse(self.info.view)
        locations = [loc for loc in locations if loc.path(view) is not None]
        if not locations:
            raise GalleryError(f"no locations with a {view.value} image to add")
        ids = [str(loc.id) for loc in locations]
        repeated = _repeated(ids, self._position_of_id)
        if repeated:
            raise GalleryError(
                f"{len(repeated)} id(s) already in the gallery or given twice, e.g. {repeated[0]!r}"
            )
        paths = [loc.path(view) for loc in locations]
        if shard_dir is not None:
            encoding = encode_sharded(self.model, paths, view, options, shard_dir)
        else:
            encoding = encode_images(self.model, paths, view, options)
        if not encoding.kept:
            raise GalleryError(f"none of the {len(locations)} {view.value} images could be read")
        kept = [locations[i] for i in encoding.kept]
        self.index.add(encoding.emb)
        new_rows = _metadata_frame(kept, view)
        self.metadata = (
            pd.concat([self.metadata, new_rows], ignore_index=True) if len(self.metadata) else new_rows
        )
        self._position_of_id = {str(i): n for n, i in enumerate(self.metadata["id"])}
        self.info.size = len(self.metadata)
        self.calibration = None  # its radius was measured on the old contents
        return len(kept)

    def save(self, folder: str | Path) -> Path:
        """Write the gallery directory atomically (a new one replaces the old only when complete)."""
        import os

        folder = Path(folder)
        paths = [p for p in self.metadata["path"] if p is not None]
        self.root = Path(os.path.commonpath([os.path.dirname(p) for p in paths])) if paths else None
        self.info.format = GALLERY_FORMAT
        self.info.root_absolute = None if self.root is None else str(self.root)
        self.info.root = None if self.root is None else os.path.relpath(self.root, folder.resolve())
        stored = self.metadata.assign(path=[self.portable_path(p) for p in self.metadata["path"]])
        with atomic_directory(folder) as tmp:
            self.index.save(tmp)
            stored.to_parquet(tmp / METADATA_FILE, index=False)
            atomic_write_text(tmp / INFO_FILE, self.info.to_json())
            names = [INFO_FILE, METADATA_FILE, self.index.file_name]
            sums = {name: file_sha256(tmp / name) for name in names}
            atomic_write_text(tmp / CHECKSUM_FILE, json.dumps(sums, indent=2, sort_keys=True))
            if self.calibration is not None and self.calibration.gallery_size == self.info.size:
                save_calibration(tmp, self.calibration)
        self.folder = folder
        if self.info.index == "exact":  # re-open memory-mapped from the new files
            self.index = load_index(folder, "exact", dim=self.info.dim)
        return folder

    @classmethod
    def load(
        cls, folder: str | Path, model: Any = None, verify: bool = True, device: str = "auto"
    ) -> Gallery:
        """Open a gallery directory; checksums are verified and a given model must match it.
        Without a model, the recorded one is loaded on first use onto ``device``."""
        import pandas as pd

        folder = Path(folder)
        recover_directory(folder)  # a replacement interrupted by a kill: put the complete copy back
        if not (folder / INFO_FILE).is_file():
            raise GalleryError(
                f"{folder} is not a gallery (no {INFO_FILE}); build one with "
                "`geobridge gallery build --model DIR --images DATA --view satellite --out GALLERY`"
            )
        if verify:
            verify_checksums(folder)
        info = GalleryInfo.from_json((folder / INFO_FILE).read_text(encoding="utf-8"), folder / INFO_FILE)
        try:
            metadata = pd.read_parquet(folder / METADATA_FILE)
            index = load_index(folder, info.index, dim=info.dim, nprobe=info.nprobe, ef_search=info.ef_search)
        except Exception as err:
            raise GalleryCorruptError(f"cannot read gallery {folder}: {err}") from None
        if len(metadata) != len(index) or len(index) != info.size:
            raise GalleryCorruptError(
                f"gallery {folder} is inconsistent: {len(metadata)} metadata rows, {len(index)} indexed vectors, "
                f"{info.size} recorded; rebuild it"
            )
        gallery = cls(info, index, metadata, folder=folder, device=device)
        gallery.root = image_root(folder, info)
        if gallery.root is not None:  # in memory every path is absolute; relative ones hang under the root
            gallery.metadata["path"] = [
                None if p is None else str(gallery.root / p) for p in metadata["path"]
            ]
        try:
            gallery.calibration = load_calibration(folder, info.size)
        except CalibrationError as err:
            raise GalleryCorruptError(str(err)) from None
        if model is not None:
            gallery.use_model(model)
        return gallery

    def set_calibration(self, calibration: Calibration) -> None:
        """Estimate with ``calibration`` from now on, and store it in the gallery folder."""
        self.calibration = calibration
        if self.folder is not None:
            save_calibration(self.folder, calibration)

    # ----------------------------------------------------------------- the model
    def use_model(self, model: Any) -> None:
        """Search with ``model``; it must be the gallery's model (same config and weights)."""
        reason = self.info.model.mismatch(ModelReference.of(model))
        if reason is not None:
            raise GalleryModelMismatchError(
                f"the model does not match the one gallery {self.folder or ''} was built with: {reason}; "
                "rebuild the gallery with this model or use the gallery's model"
            )
        self._model = model

    @property
    def model(self) -> Any:
        """The gallery's model, loaded from its recorded path on first use."""
        if self._model is None:
            path = self.info.model.path
            if path is None or not Path(path).exists():
                raise GalleryError(
                    f"the gallery's model is not available (recorded path: {path}); pass the model explicitly"
                )
            from geobridge.models import load_model

            self.use_model(load_model(path, device=self.device))
        return self._model

    @property
    def query_views(self) -> list[str]:
        """Views a query may be given in: the model's image towers, and text when it has one."""
        return list(self.info.model.views) + (["text"] if self.info.model.has_text else [])

    # ----------------------------------------------------------------- searching
    def __len__(self) -> int:
        return len(self.metadata)

    def search(
        self,
        images: Sequence[Any] | None = None,
        view: View | str | None = None,
        text: str | Sequence[str] | None = None,
        k: int = 5,
        truth: Sequence[tuple[float, float] | None] | None = None,
        tta: str | None = None,
    ) -> list[QueryResult]:
        """Top-``k`` for image queries (paths or PIL images, all of ``view``) or text queries.

        ``truth`` gives each query's true (lat, lon) when known; its matches (and estimate) then
        carry ``error_m``, the great-circle distance to the true position.
        """
        if (images is None) == (text is None):
            raise QueryError("give either images (with their view) or text, not both or neither")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise QueryError(f"k must be a positive integer, got {k!r}")
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            emb, labels, query_view = self.embed_texts(texts), [t.strip() for t in texts], View.TEXT
        else:
            if view is None:
                raise QueryError(f"say which view the images are ({', '.join(self.info.model.views)})")
            query_view = self.parse_query_view(view, image=True)
            assert images is not None  # exactly one of images and text (checked above)
            images = list(images)
            if not images:
                raise QueryError("no images given")
            emb, labels = (
                self.embed_images(images, query_view, tta=tta),
                [input_name(i, n) for n, i in enumerate(images)],
            )
        return self.search_embeddings(emb, k=k, labels=labels, view=query_view.value, truth=truth)

    def parse_query_view(self, view: View | str, image: bool = False) -> View:
        """The query view named ``view``; with ``image``, it must be an image view of the model."""
        try:
            parsed = View.parse(view)
        except ValueError as err:
            raise QueryError(str(err)) from None
        if parsed.value not in self.query_views:
            raise QueryError(
                f"this gallery's model cannot embed {parsed.value} queries; it takes: {', '.join(self.query_views)}"
            )
        if image and not parsed.is_image:
            raise QueryError(
                f"an image query needs an image view ({', '.join(self.info.model.views)}), "
                f"not {parsed.value}; give a text query as text"
            )
        return parsed

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        cleaned = [str(t).strip() for t in texts]
        if not cleaned or any(not t for t in cleaned):
            raise QueryError("the text query is empty: describe the place in a sentence")
        if any(len(t) > MAX_TEXT_CHARS for t in cleaned):
            raise QueryError(f"the text query is longer than {MAX_TEXT_CHARS} characters")
        self.parse_query_view(View.TEXT)
        return encode_texts(self.model, cleaned, EmbedOptions(progress=False))

    def embed_images(self, images: Sequence[Any], view: View, tta: str | None = None) -> np.ndarray:
        """Embed PIL images or image files; an unreadable one is a QueryError naming it."""
        encoding = encode_images(self.model, images, view, EmbedOptions(progress=False, tta=tta), warn=False)
        if encoding.skipped:
            name, reason = next(iter(encoding.skipped.items()))
            raise QueryError(f"cannot read image {name}: {reason}")
        return encoding.emb

    def search_embeddings(
        self,
        emb: np.ndarray,
        k: int = 5,
        labels: Sequence[str] | None = None,
        view: str = "",
        truth: Sequence[tuple[float, float] | None] | None = None,
    ) -> list[QueryResult]:
        """Top-``k`` for already embedded queries, each with its location estimate."""
        emb = np.atleast_2d(np.asarray(emb, np.float32))
        if emb.shape[1] != self.info.dim:
            raise QueryError(f"query embeddings have dimension {emb.shape[1]}, the gallery {self.info.dim}")
        if truth is not None and len(truth) != len(emb):
            raise QueryError(f"{len(truth)} true positions for {len(emb)} queries")
        top = self.calibration.top if self.calibration is not None else DEFAULT_TOP
        found = self.index.search(emb, max(k, top))  # the estimate needs its top even when k is smaller
        lat = self.metadata["lat"].to_numpy(np.float64)
        lon = self.metadata["lon"].to_numpy(np.float64)
        ids = self.metadata["id"].astype(str).to_numpy()
        paths = self.metadata["path"].to_numpy()
        results = []
        for q in range(len(emb)):
            true = truth[q] if truth is not None else None
            matches: list[Match] = []
            for score, row in zip(found.scores[q], found.indices[q]):
                if row < 0:
                    continue  # FAISS found fewer than k
                error = None if true is None else float(haversine_m(true[0], true[1], lat[row], lon[row]))
                matches.append(
                    Match(
                        rank=len(matches) + 1,
                        id=str(ids[row]),
                        score=float(score),
                        lat=float(lat[row]),
                        lon=float(lon[row]),
                        path=self.portable_path(paths[row]),
                        error_m=error,
                    )
                )
            results.append(
                QueryResult(
                    query=labels[q] if labels is not None else f"query {q}",
                    view=view,
                    matches=matches[:k],
                    true_lat=None if true is None else float(true[0]),
                    true_lon=None if true is None else float(true[1]),
                    estimate=self._estimate(matches[:top], view, true),
                )
            )
        return results

    def _estimate(
        self, matches: list[Match], view: str, truth: tuple[float, float] | None
    ) -> Estimate | None:
        """The estimate from the top matches, with the calibrated radius of ``view`` when there is one."""
        if not matches:
            return None
        calibration = self.calibration
        calibrated = calibration.for_view(view) if calibration is not None else None
        return estimate_position(
            [m.lat for m in matches],
            [m.lon for m in matches],
            [m.score for m in matches],
            temperature=calibration.temperature if calibration is not None else DEFAULT_TEMPERATURE,
            radius_m=None if calibrated is None else calibrated.radius_m,
            coverage=None if calibrated is None else calibrated.coverage,
            truth=truth,
        )

    def portable_path(self, path: str | None) -> str | None:
        """``path`` relative to the gallery's image root (as stored and shown), else as it is."""
        if path is None or self.root is None or not Path(path).is_relative_to(self.root):
            return path  # added since the last save, outside its root: shown as it is until saved
        return Path(path).relative_to(self.root).as_posix()

    def path_of(self, entry_id: str) -> Path | None:
        """The image file of a gallery entry (for thumbnails), or None for an unknown id."""
        row = self._position_of_id.get(str(entry_id))
        if row is None:
            return None
        path = self.metadata["path"].iloc[row]
        return None if path is None else Path(path)

    def summary(self) -> dict[str, Any]:
        """What the gallery holds (for `GET /gallery` and `geobridge gallery info`)."""
        lat = self.metadata["lat"].to_numpy(np.float64)
        lon = self.metadata["lon"].to_numpy(np.float64)
        return {
            "size": len(self),
            "view": self.info.view,
            "index": self.info.index,
            "dim": self.info.dim,
            "model": {"name": self.info.model.name, "path": self.info.model.path},
            "query_views": self.query_views,
            "bounds": None
            if len(self) == 0
            else {
                "south": float(lat.min()),
                "north": float(lat.max()),
                "west": float(lon.min()),
                "east": float(lon.max()),
            },
            "created": self.info.created,
            "image_root": None if self.root is None else str(self.root),
        }


def image_root(folder: Path, info: GalleryInfo) -> Path | None:
    """Where a gallery's relative image paths hang: its root next to the gallery when that exists
    (the two were copied together), else the absolute root it was saved with; None for format 1."""
    if info.root is None:
        return None
    beside = (folder / info.root).resolve()
    if beside.is_dir() or info.root_absolute is None or not Path(info.root_absolute).is_dir():
        return beside
    return Path(info.root_absolute)


def verify_checksums(folder: str | Path) -> None:
    """Raise GalleryCorruptError naming the first missing or altered file."""
    folder = Path(folder)
    checksum_path = folder / CHECKSUM_FILE
    try:
        recorded = json.loads(checksum_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise GalleryCorruptError(
            f"gallery {folder} has no readable {CHECKSUM_FILE} ({err}); rebuild it"
        ) from None
    if not isinstance(recorded, dict) or INFO_FILE not in recorded or METADATA_FILE not in recorded:
        raise GalleryCorruptError(f"{checksum_path} does not list the gallery's files; rebuild it")
    for name, digest in sorted(recorded.items()):
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise GalleryCorruptError(f"gallery file {path} is missing; rebuild the gallery")
        if file_sha256(path) != digest:
            raise GalleryCorruptError(
                f"gallery file {path} does not match its checksum (corrupted or edited); rebuild the gallery"
            )


def file_sha256(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def weights_hash(model: Any) -> str:
    """SHA-256 over the model's parameters and buffers (names, shapes and values)."""
    import torch

    digest = hashlib.sha256()
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for name, tensor in state.items():
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(array.shape)}:{array.dtype}".encode())
        digest.update(array.view(-1).view(torch.uint8).numpy().tobytes() if array.numel() else b"")
    return digest.hexdigest()


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):  # an instance, not the class
        return dataclasses.asdict(config)
    for method in ("model_dump", "to_dict"):
        if hasattr(config, method):
            return dict(getattr(config, method)())
    if isinstance(config, dict):
        return dict(config)
    return dict(vars(config))


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _metadata_frame(locations: Sequence[Location], view: View):
    import pandas as pd

    view_paths = [loc.path(view) for loc in locations]
    return pd.DataFrame(
        {
            "id": pd.Series([str(loc.id) for loc in locations], dtype=object),
            "lat": np.array([loc.lat for loc in locations], np.float64),
            "lon": np.array([loc.lon for loc in locations], np.float64),
            "path": pd.Series(
                [None if p is None else str(Path(p).resolve()) for p in view_paths], dtype=object
            ),
            "size_m": np.array([_footprint_m(loc) for loc in locations], np.float64),
        }
    )


FOOTPRINT_KEYS = ("size_m", "scale_m", "ground_m")  # drone-photos, GeoLoc builds, rendered worlds


def _footprint_m(location: Location) -> float:
    """The side of the image's square ground footprint in metres, as the source records it, else NaN."""
    for key in FOOTPRINT_KEYS:
        value = location.extra.get(key)
        if isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0:
            return float(value)
    return float("nan")


def _repeated(ids: list[str], existing: dict[str, int]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i in existing or i in seen:
            out.append(i)
        seen.add(i)
    return sorted(set(out))
