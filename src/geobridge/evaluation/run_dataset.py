"""Evaluate a model on a benchmark: load the dataset, embed each direction's queries and
gallery, and score them with the benchmark's protocol.

    from geobridge.models import load_model
    from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
    results = evaluate_model_on_dataset(load_model("demo/model"), "cvusa", "/data/CVUSA")
    results["P2S"].metrics["R@1"]

This is the glue behind ``geobridge evaluate --model DIR --dataset NAME --root PATH``. Image
sets shared by several directions (e.g. the satellite gallery of D2S and P2S) are embedded once.
Each result is a :class:`DatasetResult`: the protocol's result plus the query and gallery items
it scored (ids, image paths or texts), so reports can show them (the HTML examples page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.data.benchmarks import Benchmark, ImageSet, load_benchmark
from geobridge.data.benchmarks.base import pool_image_sets
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import EvaluationResult, evaluate, get_protocol
from geobridge.models.embedder import EmbedOptions, encode_images, encode_texts
from geobridge.views import AnyDirection, View


class ModelViewError(ValueError):
    """The model has no tower for a view a requested direction needs."""


@dataclass
class DatasetResult(EvaluationResult):
    """An :class:`EvaluationResult` that also holds the items it scored, in the result's index
    order: ``query_items`` is the query set (every query, an unreadable one included: it counts
    as a miss), ``gallery_items`` the gallery set minus any unreadable image (ids, image paths, or
    texts for text items), so ``per_query["top_indices"]`` index them."""

    query_items: ImageSet | None = None
    gallery_items: ImageSet | None = None

    @classmethod
    def of(cls, result: EvaluationResult, query_items: ImageSet, gallery_items: ImageSet) -> DatasetResult:
        """``result`` with its items attached (the arrays are shared, not copied)."""
        base = {f.name: getattr(result, f.name) for f in fields(EvaluationResult)}
        return cls(**base, query_items=query_items, gallery_items=gallery_items)


@dataclass
class EmbeddedSet:
    """An image set's embeddings and the set itself, restricted to the items that could be read
    (``kept``: their positions in the full set)."""

    images: ImageSet
    embeddings: Embeddings
    skipped: int
    kept: list[int]


#: Query id given to an unreadable query: no gallery id can equal it (ids never hold NUL).
UNREADABLE_QUERY_ID = "\0unreadable-query-{}"


def provenance_note(dataset: str, direction: str) -> str:
    """The first note of every result :func:`evaluate_model_on_dataset` returns: where it comes from."""
    return f"dataset {dataset}, direction {direction}"


def resolve_directions(
    benchmark: Benchmark, directions: str | Sequence[str | AnyDirection] | None
) -> list[AnyDirection]:
    """``None`` or ``"all"``: every direction of the benchmark; else ``"D2S,S2D"`` or a list."""
    if directions is None or (isinstance(directions, str) and directions.strip().lower() == "all"):
        return list(benchmark.directions())
    parts = directions.split(",") if isinstance(directions, str) else list(directions)
    parts = [p.strip() if isinstance(p, str) else p for p in parts]
    chosen = [benchmark.check_direction(p) for p in parts if p]
    if not chosen:
        raise ValueError("no direction given; pass e.g. 'D2S,S2D' or 'all'")
    return list(dict.fromkeys(chosen))


def check_model_views(model: Any, directions: Sequence[AnyDirection]) -> None:
    """Fail before any work if the model lacks a tower for a view of ``directions``."""
    have = list(getattr(model, "views", []))
    has_text = bool(getattr(model, "has_text", False))
    names = ", ".join([v.value for v in have] + (["text"] if has_text else [])) or "none"
    for direction in directions:
        for view in direction.views:
            ok = has_text if view is View.TEXT else view in have
            if not ok:
                raise ModelViewError(
                    f"direction {direction.name} needs a {view.value} tower, but the model has towers for: "
                    f"{names}; choose other directions (--directions) or a model with that view"
                )


def subset(images: ImageSet, keep: Sequence[int]) -> ImageSet:
    """The items ``keep`` of ``images``; per-item entries of ``extra`` are subset too."""
    n = len(images)
    keep = list(keep)
    if len(keep) == n:
        return images

    def pick(values: Any) -> Any:
        if isinstance(values, np.ndarray):
            return values[keep]
        return [values[i] for i in keep]

    extra = {
        key: pick(value) if isinstance(value, (list, np.ndarray)) and len(value) == n else value
        for key, value in images.extra.items()
    }
    return ImageSet(
        view=images.view,
        ids=pick(images.ids),
        paths=None if images.paths is None else pick(images.paths),
        texts=None if images.texts is None else pick(images.texts),
        lat=None if images.lat is None else images.lat[keep],
        lon=None if images.lon is None else images.lon[keep],
        extra=extra,
    )


def embed_set(model: Any, images: ImageSet, options: EmbedOptions = EmbedOptions()) -> EmbeddedSet:
    """Embed an image set (or a text set) into :class:`Embeddings` carrying its ids and coordinates."""
    if images.view is View.TEXT:  # an empty text says nothing: it is skipped like an unreadable image
        texts = images.texts or []
        kept_positions = [i for i, text in enumerate(texts) if str(text).strip()]
        emb = encode_texts(model, [texts[i] for i in kept_positions], options)
    else:
        encoding = encode_images(
            model, images.paths or [], images.view, options, desc=f"embed {images.view.value}"
        )
        emb, kept_positions = encoding.emb, encoding.kept
    kept = subset(images, kept_positions)
    embeddings = Embeddings(
        emb=emb,
        ids=np.array(kept.ids, dtype=str),
        lat=kept.lat,
        lon=kept.lon,
        paths=None if kept.paths is None else np.array([str(p) for p in kept.paths], dtype=str),
        meta={"view": images.view.value, "tta": options.tta},
    )
    return EmbeddedSet(
        images=kept, embeddings=embeddings, skipped=len(images) - len(kept), kept=kept_positions
    )


def as_queries(embedded: EmbeddedSet, full: ImageSet) -> EmbeddedSet:
    """The query side of an embedded set: every item of ``full`` in its order, an unreadable one
    as a row that can match nothing (a unit vector under :data:`UNREADABLE_QUERY_ID`), so it
    counts as a miss in every denominator instead of silently shrinking the query set."""
    if not embedded.skipped:
        return embedded
    n, dim = len(full), embedded.embeddings.dim
    emb = np.zeros((n, dim), np.float32)
    emb[:, 0] = 1.0
    emb[embedded.kept] = embedded.embeddings.emb
    ids = np.array([UNREADABLE_QUERY_ID.format(i) for i in range(n)], dtype=object)
    ids[embedded.kept] = np.asarray(embedded.embeddings.ids, dtype=object)
    embeddings = Embeddings(
        emb=emb,
        ids=ids.astype(str),
        lat=full.lat,
        lon=full.lon,
        paths=None if full.paths is None else np.array([str(p) for p in full.paths], dtype=str),
        meta=dict(embedded.embeddings.meta),
    )
    return EmbeddedSet(images=full, embeddings=embeddings, skipped=embedded.skipped, kept=list(range(n)))


def pool_embedded(parts: Sequence[EmbeddedSet]) -> EmbeddedSet:
    """Embedded sets of several views as ONE gallery, in order (GeoText-1652's official
    all-views gallery, see ``Benchmark.gallery_parts``): each part was embedded by its own
    view's tower; ids, vectors and paths are concatenated, ``extra["views"]`` names each item's view."""
    if len(parts) == 1:
        return parts[0]
    images = pool_image_sets([part.images for part in parts])
    arrays = [part.embeddings for part in parts]
    has_coords = all(a.has_coordinates for a in arrays)
    has_paths = all(a.paths is not None for a in arrays)
    embeddings = Embeddings(
        emb=np.concatenate([a.emb for a in arrays]),
        ids=np.concatenate([a.ids for a in arrays]),
        lat=np.concatenate([a.lat for a in arrays]) if has_coords else None,
        lon=np.concatenate([a.lon for a in arrays]) if has_coords else None,
        paths=np.concatenate([a.paths for a in arrays]) if has_paths else None,
        meta={**arrays[0].meta, "view": "+".join(str(a.meta.get("view")) for a in arrays)},
    )
    kept, offset = [], 0
    for part in parts:
        kept += [offset + k for k in part.kept]
        offset += len(part.kept) + part.skipped
    return EmbeddedSet(images=images, embeddings=embeddings, skipped=sum(p.skipped for p in parts), kept=kept)


def protocol_options_for(protocol: str, offered: dict[str, Any], progress: bool) -> dict[str, Any]:
    """The benchmark's options the protocol accepts (e.g. VIGOR's semi-positives only go to ``vigor``)."""
    accepted = {f.name for f in fields(get_protocol(protocol).options)}
    options = {k: v for k, v in offered.items() if k in accepted}
    if "progress" in accepted:
        options["progress"] = progress
    return options


def evaluate_model_on_dataset(
    model: Any,
    name: str | Benchmark,
    root: str | Path | None = None,
    directions: str | Sequence[str | AnyDirection] | None = None,
    protocol: str | None = None,
    tta: str | None = None,
    batch_size: int = 32,
    progress: bool = True,
    precision: str = "auto",
    num_workers: int | None = None,
    loader_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, DatasetResult]:
    """Evaluate ``model`` on every requested direction of a benchmark; keys are direction names.

    ``name`` is a registered benchmark (loaded from ``root`` with the loader's ``options``, e.g.
    ``mode="same"`` for VIGOR, ``altitude=200`` for SUES-200) or an opened :class:`Benchmark`.
    ``loader_options`` is the same as a mapping, for loader options whose name is also a
    parameter here (University-1652's ``protocol``) or options built at run time (the CLI).
    ``protocol`` overrides the benchmark's default; ``tta="flip"`` averages each image with its
    mirror; ``precision`` and ``num_workers`` go to the embedding engine, which runs on the model's
    device. A model lacking a tower for a needed view is an error naming it, before any work. An
    unreadable query image or an empty text query counts as a miss; an unreadable gallery image or
    empty gallery text is left out (its queries then miss); the result's notes say how many of each.
    """
    twice = sorted(set(loader_options or {}) & set(options))
    if twice:
        raise ValueError(f"loader option(s) {', '.join(twice)} given both in loader_options and as keywords")
    options = {**(loader_options or {}), **options}
    if isinstance(name, Benchmark):
        if options:
            raise ValueError("loader options go with a benchmark name, not an opened Benchmark")
        benchmark = name
    else:
        if root is None:
            raise ValueError(f"give the root folder of the {name} dataset")
        benchmark = load_benchmark(name, root, **options)
    chosen = resolve_directions(benchmark, directions)
    check_model_views(model, chosen)
    protocol_name = protocol or benchmark.default_protocol
    get_protocol(protocol_name)  # an unknown protocol fails before embedding

    embed_options = EmbedOptions(
        batch_size=batch_size, num_workers=num_workers, precision=precision, tta=tta, progress=progress
    )
    cache: dict[tuple, EmbeddedSet] = {}

    def embedded(images: ImageSet) -> EmbeddedSet:
        key = (images.view, tuple(images.paths or images.texts or ()), tuple(images.ids))
        if key not in cache:
            cache[key] = embed_set(model, images, embed_options)
        return cache[key]

    results: dict[str, DatasetResult] = {}
    for direction in chosen:
        skipped_before = dict(benchmark.skipped_files)
        query_set, gallery_parts = benchmark.query_set(direction), benchmark.gallery_parts(direction)
        skipped = {what: n - skipped_before.get(what, 0) for what, n in benchmark.skipped_files.items()}
        query = as_queries(embedded(query_set), query_set)
        gallery = pool_embedded([embedded(part) for part in gallery_parts])
        offered = benchmark.protocol_options(direction, query.images, gallery.images)
        result = evaluate(
            query.embeddings,
            gallery.embeddings,
            protocol_name,
            **protocol_options_for(protocol_name, offered, progress),
        )
        result.notes.insert(0, provenance_note(benchmark.name, direction.name))
        for what, n in skipped.items():
            if n:
                result.notes.append(f"{n} listed {what} file(s) missing from the dataset were skipped")
        if query.skipped:
            what = "empty text query(ies)" if query_set.view is View.TEXT else "unreadable query image(s)"
            result.notes.append(f"{query.skipped} {what} count as misses")
        if gallery.skipped:
            text = gallery_parts[0].view is View.TEXT
            what = "empty gallery text(s)" if text else "unreadable gallery image(s)"
            result.notes.append(f"{gallery.skipped} {what} were left out")
        scored = query.images
        if "query_row" in result.per_query:  # multi-query: one fused query per label, at its first row
            scored = subset(query.images, result.per_query["query_row"].tolist())
        results[direction.name] = DatasetResult.of(result, scored, gallery.images)
        if result.reverse is not None:  # the reverse scored from the same pair (geotext: I2T)
            result.reverse.notes[:] = [
                provenance_note(benchmark.name, direction.reverse_name)
            ] + result.notes[1:]
            results[direction.reverse_name] = DatasetResult.of(result.reverse, gallery.images, query.images)
    return results
