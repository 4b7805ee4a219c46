"""The benchmarks' evaluation protocols, each selectable by name and named in every result.

=============  ==============================================================================
name           convention (docs/methods.md#protocols)
=============  ==============================================================================
``u1652``      University-1652, layumi's script: good = gallery items with the query's label,
               junk = items labelled ``-1``; every other gallery item (the 250 distractor
               buildings included) competes. Ties: ``np.argsort(score)[::-1]`` order.
               Metrics R@1/5/10, R@1% = CMC[round(0.01 N)], AP = trapezoidal (Market-1501).
               Options (both u1652 protocols, refused by the others): ``multi_query=True``
               -- layumi's multi-query test: the query images of one label (a building's
               drone images) fused into one query, the L2-normalised mean of their
               normalised features, one query per label; ``rerank=True`` or
               ``rerank=(k1, k2, lambda)`` -- k-reciprocal re-ranking (Zhong et al. 2017)
               as layumi's ``re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3)``,
               the re-ranked distances ordered by ``np.argsort(distance)`` ascending.
``u1652-s4g``  Sample4Geo / DAC's copy: as ``u1652`` but gallery labels absent from the
               queries become junk, so distractors are removed.
``pairs``      CVUSA / CVACT (Sample4Geo): one true match per query, by id (gallery ids must
               be unique); rank = number of gallery scores strictly above the true match's;
               R@1% cut-off ``N // 100``. No AP.
``vigor``      VIGOR (Sample4Geo): ``pairs`` ranks, plus the hit rate with semi-positives
               (option ``semi_positives``, one list per query *row*, or the query file's
               own ``semi_positives`` array: panoramas sharing a positive differ in them),
               VIGOR's own R@1% (``int(0.01 N) + 1``) as ``R@1%_vigor``, and metre-level
               errors of the top-1 when coordinates exist.
``geobridge``  GeoBridge's released code: one positive by id (or file-name stem), "AP" = mean
               reciprocal rank, R@1% = top ``max(1, int(0.01 N))``, and L@50/100/150 plus
               mean error in km when coordinates exist. Ties go to the true match.
``geotext``    GeoText-1652 (``Method/re_bbox.py``, ``itm_eval``): the queries are the texts
               and the gallery is ONE set of every test image of every view (drone,
               satellite, street); ids are buildings. Both directions from that one pair:
               text -> image (rank of the first image of the text's building) and image ->
               text (every image a query; rank of the first text written for an image of
               its building).
               Ties: ``np.argsort(score)[::-1]`` order. Metrics under the official names --
               ``img_r1/5/10`` are the TEXT queries retrieving images, ``txt_r1/5/10`` the
               IMAGE queries retrieving texts (the code's naming; the README labels the
               ``txt`` column "Text Query", which the code contradicts) -- ``r_mean`` (mean
               of the six), and ``R@1/5/10`` (= ``img_r*``). The image -> text side is
               also a result of its own (``EvaluationResult.reverse``: images as queries,
               ``R@1/5/10`` = ``txt_r*``), reported as direction ``I2T`` beside ``T2I`` by
               ``evaluate_model_on_dataset``. No AP, no R@1%: the official script has none.
               The official scores are ITM re-ranked over a top-k of cosine scores (-100
               elsewhere); a dual encoder is scored here by cosine over the whole gallery.
=============  ==============================================================================

Every query counts in every denominator: a query whose positive is not in the gallery is a
miss, and the result's notes say how many there were.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import PurePath
from typing import Any

import numpy as np

from geobridge.embeddings import Embeddings
from geobridge.evaluation import metrics as M
from geobridge.evaluation.ranking import JUNK, RankingResult, Relevance, TieRule, rank_distances, rank_queries

NORM_TOLERANCE = 1e-3  # a vector whose L2 norm is further than this from 1 counts as unnormalised
U1652_JUNK_LABEL = "-1"


class EvaluationError(ValueError):
    """The inputs cannot be evaluated under the requested protocol; the message says why."""


@dataclass
class EvaluationResult:
    """Metrics of one evaluation (percentages, except keys ending in ``_m`` / ``_km``).

    ``per_query`` holds arrays of length ``n_query``: ``rank`` (0-based rank of the first good
    item, -1 if none), ``positive_index`` (gallery index of that item, -1 if none),
    ``top1_index``, ``top_indices`` (Q, 10), and the protocol's own (``ap``,
    ``reciprocal_rank``, ``semi_positives_above``, ``error_m``; ``geotext`` adds
    ``reverse_rank`` of length ``n_gallery``: each gallery image as a query among the texts).
    ``reverse`` is the reverse direction's own result when the protocol scores it from the same
    pair (``geotext``), else None; it is not part of :meth:`to_dict`.
    """

    protocol: str
    metrics: dict[str, float]
    n_query: int
    n_gallery: int
    notes: list[str] = field(default_factory=list)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    #: the reverse direction scored from the same pair (``geotext``: image -> text), or None
    reverse: EvaluationResult | None = None

    def to_dict(self, include_per_query: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; per-query arrays only when asked (they can be large)."""
        out: dict[str, Any] = {
            "protocol": self.protocol,
            "description": self.description,
            "n_query": self.n_query,
            "n_gallery": self.n_gallery,
            "metrics": {key: float(value) for key, value in self.metrics.items()},
            "notes": list(self.notes),
        }
        if include_per_query:
            out["per_query"] = {key: np.asarray(value).tolist() for key, value in self.per_query.items()}
        return out


# ----------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class CommonOptions:
    """Options every protocol accepts."""

    top_k: int = 10
    chunk_size: int | None = None
    progress: bool = False


@dataclass(frozen=True)
class U1652Options(CommonOptions):
    """University-1652's test options (layumi's ``test.py`` / ``evaluate_rerank.py``).

    ``multi_query``: the query images of one label (e.g. the ~54 drone images of a building)
    are fused into ONE query, the mean of their L2-normalised features, L2-normalised again;
    one query per label, in order of first appearance (``per_query["query_row"]`` is each
    fused query's first row). ``rerank``: k-reciprocal re-ranking (Zhong et al. 2017) of the
    cosine scores, ``True`` for layumi's ``(k1=20, k2=6, lambda_value=0.3)`` or a tuple
    ``(k1, k2, lambda_value)``; the re-ranked distances are ranked ascending
    (``np.argsort(distance)``) and need memory for three ``(Q + N)^2`` float32 matrices, see
    :mod:`geobridge.evaluation.rerank`."""

    multi_query: bool = False
    rerank: bool | tuple[int, int, float] | None = None


@dataclass(frozen=True)
class VigorOptions(CommonOptions):
    """``semi_positives``: per query the gallery ids of its semi-positives, as a sequence aligned
    with the query rows (exact), or a mapping from query id (only right when queries sharing an
    id share their semi-positives; a note says how many share one). Without the option, the query
    embeddings' own per-row ``semi_positives`` are used when they have them. ``radii_m``:
    accuracy radii in metres."""

    semi_positives: Sequence[Sequence[str]] | Mapping[str, Sequence[str]] | None = None
    radii_m: tuple[float, ...] = (25.0, 50.0, 100.0)


@dataclass(frozen=True)
class GeoBridgeOptions(CommonOptions):
    """``match_by``: ``id`` (exact) or ``stem`` (file-name stem of both ids, e.g. ``12.png`` and
    ``12``). ``radii_m``: the L@ radii in metres."""

    match_by: str = "id"
    radii_m: tuple[float, ...] = (50.0, 100.0, 150.0)


def _parse_options(cls: type, protocol: str, options: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise EvaluationError(
            f"protocol {protocol!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(known))}"
        )
    return cls(**options)


# ----------------------------------------------------------------------------------------------
# shared preparation


@dataclass
class _Prepared:
    query: np.ndarray
    gallery: np.ndarray
    notes: list[str]


def _checked_vectors(emb: Embeddings, role: str, notes: list[str]) -> np.ndarray:
    vectors = np.asarray(emb.emb, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise EvaluationError(f"the {role} holds no embeddings")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise EvaluationError(
            f"{rows.size} {role} vector(s) contain NaN or infinite values (first: row {rows[0]}, "
            f"id {str(emb.ids[rows[0]])!r}); re-embed those items or drop them"
        )
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors)).astype(np.float64)  # no full-size copy
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise EvaluationError(
            f"{zero.size} {role} vector(s) are all zeros (first: row {zero[0]}, id {str(emb.ids[zero[0]])!r}); "
            "they have no direction to compare"
        )
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        notes.append(
            f"{int(off.sum())} of {len(norms)} {role} vectors were not unit length; "
            f"all {role} vectors were L2-normalised (cosine similarity)"
        )
        vectors = (vectors / norms[:, None]).astype(np.float32)
    return vectors


def _prepare(query: Embeddings, gallery: Embeddings) -> _Prepared:
    notes: list[str] = []
    if len(query) == 0 or len(gallery) == 0:
        raise EvaluationError("the query or the gallery is empty")
    if query.emb.shape[1] != gallery.emb.shape[1]:
        raise EvaluationError(
            f"query vectors have dimension {query.emb.shape[1]} but gallery vectors {gallery.emb.shape[1]}; "
            "embed both with the same model"
        )
    return _Prepared(
        _checked_vectors(query, "query", notes), _checked_vectors(gallery, "gallery", notes), notes
    )


def _require_unique(keys: np.ndarray, protocol: str) -> None:
    unique, counts = np.unique(keys, return_counts=True)
    dup = unique[counts > 1]
    if dup.size:
        raise EvaluationError(
            f"protocol {protocol!r} needs unique gallery ids, but {dup.size} id(s) repeat "
            f"(first: {str(dup[0])!r}); remove the duplicates or use a label-based protocol (u1652)"
        )


def _codes(
    query_keys: np.ndarray, gallery_keys: np.ndarray, gallery_junk: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Integer label codes shared by both sides; junk gallery items get ``JUNK``."""
    vocabulary, inverse = np.unique(np.concatenate([query_keys, gallery_keys]), return_inverse=True)
    q_codes = inverse[: len(query_keys)].astype(np.int64)
    g_codes = inverse[len(query_keys) :].astype(np.int64)
    g_codes[gallery_junk] = JUNK
    return q_codes, g_codes


def _recalls(ranks: np.ndarray) -> dict[str, float]:
    return {f"R@{k}": 100.0 * M.recall_at_k(ranks, k) for k in (1, 5, 10)}


def _no_match_note(ranks: np.ndarray, notes: list[str]) -> None:
    missing = int((ranks < 0).sum())
    if missing:
        notes.append(
            f"{missing} of {ranks.size} queries have no positive in the gallery; they count as misses"
        )


def _base_per_query(ranking: RankingResult) -> dict[str, np.ndarray]:
    return {
        "rank": ranking.first_rank,
        "positive_index": ranking.first_good_index,
        "top1_index": (
            ranking.top_indices[:, 0].copy()
            if ranking.top_indices.shape[1]
            else np.full(ranking.first_rank.shape, -1, dtype=np.int64)
        ),
        "top_indices": ranking.top_indices,
    }


def _truth_coordinates(
    query: Embeddings, gallery: Embeddings, ranking: RankingResult, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """True positions (lat, lon, known): the query's own, else its positive's; ``None`` when unknown."""
    if gallery.lat is None or gallery.lon is None:  # not gallery.has_coordinates
        return None
    if query.lat is not None and query.lon is not None:  # query.has_coordinates
        return query.lat, query.lon, np.ones(len(query), dtype=bool)
    known = ranking.first_good_index >= 0
    idx = np.maximum(ranking.first_good_index, 0)
    notes.append("queries have no coordinates: errors are measured to each query's positive gallery item")
    return gallery.lat[idx], gallery.lon[idx], known


def _top1_errors(
    query: Embeddings, gallery: Embeddings, ranking: RankingResult, notes: list[str]
) -> np.ndarray | None:
    """Metres between each query's top-1 gallery item and its true position (NaN if unknown)."""
    truth = _truth_coordinates(query, gallery, ranking, notes)
    if truth is None or ranking.top_indices.shape[1] == 0:
        notes.append("no coordinates in the gallery (or query): distance metrics omitted")
        return None
    lat, lon, known = truth
    assert gallery.lat is not None and gallery.lon is not None  # there is a truth only then
    top1 = np.maximum(ranking.top_indices[:, 0], 0)
    errors = M.localisation_errors_m(gallery.lat[top1], gallery.lon[top1], lat, lon)
    return np.where(known, errors, np.nan)


# ----------------------------------------------------------------------------------------------
# protocols


def _fuse_queries(
    vectors: np.ndarray, ids: np.ndarray, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multi-query: per label (in order of first appearance) the L2-normalised mean of its
    (unit) query vectors; returns the fused vectors, their labels and each one's first row."""
    labels, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # labels in order of first appearance
    sums = np.zeros((labels.size, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, vectors.astype(np.float64))
    means = sums / np.bincount(inverse, minlength=labels.size)[:, None]
    norms = np.linalg.norm(means, axis=1)
    if np.any(norms == 0):
        raise EvaluationError(
            f"multi-query: the query vectors of label {str(labels[np.flatnonzero(norms == 0)[0]])!r} "
            "average to zero; they cannot be fused"
        )
    fused = (means / norms[:, None]).astype(np.float32)[order]
    notes.append(
        f"multi-query: {len(ids)} query items fused into {labels.size} queries, one per label "
        "(mean of the L2-normalised features, L2-normalised)"
    )
    return fused, labels[order], first[order].astype(np.int64)


def _u1652(
    query: Embeddings, gallery: Embeddings, options: U1652Options, distractors_junk: bool, name: str
) -> EvaluationResult:
    from geobridge.evaluation.rerank import check_rerank, k_reciprocal_distances

    try:
        rerank = check_rerank(options.rerank)
    except ValueError as err:
        raise EvaluationError(str(err)) from None
    prepared = _prepare(query, gallery)
    notes = prepared.notes
    query_vectors, query_ids, query_rows = prepared.query, query.ids, None
    if options.multi_query:
        query_vectors, query_ids, query_rows = _fuse_queries(prepared.query, query.ids, notes)
    junk = gallery.ids == U1652_JUNK_LABEL
    if distractors_junk:
        distractors = ~np.isin(gallery.ids, query.ids) & ~junk
        if distractors.any():
            notes.append(
                f"{int(distractors.sum())} gallery items whose label no query has were treated as junk"
            )
        junk |= distractors
    elif junk.any():
        notes.append(f"{int(junk.sum())} gallery items labelled '-1' were treated as junk")
    if junk.all():
        raise EvaluationError("every gallery item is junk; nothing is left to rank")
    q_codes, g_codes = _codes(query_ids, gallery.ids, junk)
    description = PROTOCOLS[name].description
    if rerank is None:
        ranking = rank_queries(
            query_vectors,
            prepared.gallery,
            Relevance(q_codes, g_codes),
            TieRule.ARGSORT_DESC,
            top_k=options.top_k,
            chunk_size=options.chunk_size,
            progress=options.progress,
        )
    else:
        k1, k2, lam = rerank
        distances = k_reciprocal_distances(query_vectors, prepared.gallery, k1, k2, lam)
        ranking = rank_distances(distances, Relevance(q_codes, g_codes), top_k=options.top_k)
        notes.append(
            f"k-reciprocal re-ranking (k1={k1}, k2={k2}, lambda={lam:g}); ranked by np.argsort(distance)"
        )
        description += f"; k-reciprocal re-ranking (k1={k1}, k2={k2}, lambda={lam:g})"
    if options.multi_query:
        description += "; multi-query (one fused query per label)"
    ranks = ranking.first_rank
    _no_match_note(ranks, notes)
    ap = M.per_query_average_precision(ranking.good_ranks, ranking.good_offsets)
    metrics = _recalls(ranks)
    metrics["R@1%"] = 100.0 * M.recall_at_one_percent(ranks, len(gallery), M.OnePercentConvention.U1652)
    metrics["AP"] = 100.0 * float(ap.mean())
    per_query = _base_per_query(ranking)
    per_query["ap"] = ap
    if query_rows is not None:
        per_query["query_row"] = query_rows
    return EvaluationResult(name, metrics, len(query_ids), len(gallery), notes, per_query, description)


def _pairs_ranking(
    query: Embeddings,
    gallery: Embeddings,
    name: str,
    options: CommonOptions,
    query_keys=None,
    gallery_keys=None,
    semi_positives=None,
) -> tuple[_Prepared, RankingResult]:
    prepared = _prepare(query, gallery)
    query_keys = query.ids if query_keys is None else query_keys
    gallery_keys = gallery.ids if gallery_keys is None else gallery_keys
    _require_unique(gallery_keys, name)
    q_codes, g_codes = _codes(query_keys, gallery_keys, np.zeros(len(gallery), dtype=bool))
    q_codes = np.where(np.isin(query_keys, gallery_keys), q_codes, JUNK)
    ranking = rank_queries(
        prepared.query,
        prepared.gallery,
        Relevance(q_codes, g_codes, semi_positives),
        TieRule.STRICTLY_GREATER,
        top_k=options.top_k,
        chunk_size=options.chunk_size,
        progress=options.progress,
    )
    _no_match_note(ranking.first_rank, prepared.notes)
    return prepared, ranking


def _pairs(query: Embeddings, gallery: Embeddings, options: CommonOptions) -> EvaluationResult:
    prepared, ranking = _pairs_ranking(query, gallery, "pairs", options)
    ranks = ranking.first_rank
    metrics = _recalls(ranks)
    metrics["R@1%"] = 100.0 * M.recall_at_one_percent(ranks, len(gallery), M.OnePercentConvention.SAMPLE4GEO)
    return EvaluationResult(
        "pairs",
        metrics,
        len(query),
        len(gallery),
        prepared.notes,
        _base_per_query(ranking),
        PROTOCOLS["pairs"].description,
    )


def _semi_positive_lists(query: Embeddings, semi, notes: list[str]) -> list:
    """One list per query row. A mapping is keyed by query id, so rows sharing an id share a
    list: said in a note, since VIGOR panoramas with one positive can differ in semi-positives."""
    if not isinstance(semi, Mapping):
        lists = list(semi)
        if len(lists) != len(query):
            raise EvaluationError(f"{len(lists)} semi-positive lists for {len(query)} queries")
        return lists
    _, counts = np.unique(query.ids, return_counts=True)
    shared = int(counts[counts > 1].sum())
    if shared:
        notes.append(
            f"semi-positives keyed by query id: {shared} queries share an id with another and got the same "
            "list; give one list per query row (a 'semi_positives' array in the query .npz) if they differ"
        )
    return [semi.get(str(qid), ()) for qid in query.ids]


def _semi_positive_indices(query: Embeddings, gallery: Embeddings, lists: list) -> tuple[np.ndarray, ...]:
    position = {gid: i for i, gid in enumerate(gallery.ids.tolist())}
    out = []
    for qid, ids in zip(query.ids, lists):
        missing = [s for s in ids if str(s) not in position]
        if missing:
            raise EvaluationError(f"semi-positive {missing[0]!r} of query {str(qid)!r} is not in the gallery")
        out.append(np.array([position[str(s)] for s in ids], dtype=np.int64))
    return tuple(out)


def _vigor(query: Embeddings, gallery: Embeddings, options: VigorOptions) -> EvaluationResult:
    semis: tuple[np.ndarray, ...] | None = None
    semi_notes: list[str] = []
    given = options.semi_positives
    if given is not None and query.semi_positives is not None:
        raise EvaluationError(
            "semi-positives are given twice: in the query embeddings (per row) and as the "
            "semi_positives option; give one"
        )
    if given is None and query.semi_positives is not None:
        given = query.semi_positive_lists()
    if given is not None:
        _require_unique(gallery.ids, "vigor")
        semis = _semi_positive_indices(query, gallery, _semi_positive_lists(query, given, semi_notes))
    prepared, ranking = _pairs_ranking(query, gallery, "vigor", options, semi_positives=semis)
    notes, ranks = prepared.notes, ranking.first_rank
    notes.extend(semi_notes)
    metrics = _recalls(ranks)
    metrics["R@1%"] = 100.0 * M.recall_at_one_percent(ranks, len(gallery), M.OnePercentConvention.SAMPLE4GEO)
    metrics["R@1%_vigor"] = 100.0 * M.recall_at_one_percent(ranks, len(gallery), M.OnePercentConvention.VIGOR)
    per_query = _base_per_query(ranking)
    if ranking.semi_positives_above is not None:
        metrics["hit_rate"] = 100.0 * M.vigor_hit_rate(ranks, ranking.semi_positives_above)
        per_query["semi_positives_above"] = ranking.semi_positives_above
    else:
        notes.append("no semi_positives given: hit rate omitted")
    errors = _top1_errors(query, gallery, ranking, notes)
    if errors is not None:
        known = errors[np.isfinite(errors)]
        if known.size:
            for radius in options.radii_m:
                metrics[f"acc@{radius:g}m"] = 100.0 * M.accuracy_within(known, radius)
            metrics["median_error_m"] = M.median_error(known)
            metrics["mean_error_m"] = M.mean_error(known)
        per_query["error_m"] = errors
    return EvaluationResult(
        "vigor", metrics, len(query), len(gallery), notes, per_query, PROTOCOLS["vigor"].description
    )


def _stems(ids: np.ndarray) -> np.ndarray:
    return np.array([PurePath(i).stem for i in ids.tolist()], dtype=str)


def _geobridge(query: Embeddings, gallery: Embeddings, options: GeoBridgeOptions) -> EvaluationResult:
    if options.match_by not in ("id", "stem"):
        raise EvaluationError(f"match_by must be 'id' or 'stem', got {options.match_by!r}")
    keys = (
        (_stems(query.ids), _stems(gallery.ids)) if options.match_by == "stem" else (query.ids, gallery.ids)
    )
    prepared, ranking = _pairs_ranking(query, gallery, "geobridge", options, *keys)
    notes, ranks = prepared.notes, ranking.first_rank
    metrics = _recalls(ranks)
    metrics["R@1%"] = 100.0 * M.recall_at_one_percent(ranks, len(gallery), M.OnePercentConvention.GEOBRIDGE)
    rr = M.reciprocal_ranks(ranks)
    metrics["AP"] = 100.0 * float(rr.mean())
    per_query = _base_per_query(ranking)
    per_query["reciprocal_rank"] = rr
    errors = _top1_errors(query, gallery, ranking, notes)
    if errors is not None:
        known = errors[np.isfinite(errors)]
        if known.size:
            for key, value in M.geobridge_localisation(known, options.radii_m).items():
                metrics[key] = value if key.endswith("_km") else 100.0 * value
        per_query["error_m"] = errors
    return EvaluationResult(
        "geobridge", metrics, len(query), len(gallery), notes, per_query, PROTOCOLS["geobridge"].description
    )


GEOTEXT_KS: tuple[int, ...] = (1, 5, 10)


def _geotext(query: Embeddings, gallery: Embeddings, options: CommonOptions) -> EvaluationResult:
    """GeoText-1652's ``itm_eval``: both directions from one text set (the queries) and one
    gallery of every test image of every view, a match counted by building (the ids)."""
    prepared = _prepare(query, gallery)
    notes = prepared.notes
    q_codes, g_codes = _codes(query.ids, gallery.ids, np.zeros(len(gallery), dtype=bool))
    rank = functools.partial(
        rank_queries,
        tie_rule=TieRule.ARGSORT_DESC,
        top_k=options.top_k,
        chunk_size=options.chunk_size,
        progress=options.progress,
    )
    t2i = rank(prepared.query, prepared.gallery, Relevance(q_codes, g_codes))
    i2t = rank(prepared.gallery, prepared.query, Relevance(g_codes, q_codes))
    for ranks, who, where in ((t2i.first_rank, "text", "image"), (i2t.first_rank, "image", "text")):
        missing = int((ranks < 0).sum())
        if missing:
            notes.append(
                f"{missing} of {ranks.size} {who} queries have no {where} of their building; they count as misses"
            )
    metrics: dict[str, float] = {}
    for k in GEOTEXT_KS:  # the official names: img_r* are TEXT queries, txt_r* are IMAGE queries
        metrics[f"img_r{k}"] = 100.0 * M.recall_at_k(t2i.first_rank, k)
    for k in GEOTEXT_KS:
        metrics[f"txt_r{k}"] = 100.0 * M.recall_at_k(i2t.first_rank, k)
    metrics["r_mean"] = float(
        np.mean([metrics[f"{side}_r{k}"] for side in ("img", "txt") for k in GEOTEXT_KS])
    )
    for k in GEOTEXT_KS:
        metrics[f"R@{k}"] = metrics[f"img_r{k}"]
    description = PROTOCOLS["geotext"].description
    reverse_metrics = {
        **{f"txt_r{k}": metrics[f"txt_r{k}"] for k in GEOTEXT_KS},
        "r_mean": metrics["r_mean"],
        **{f"R@{k}": metrics[f"txt_r{k}"] for k in GEOTEXT_KS},
    }
    reverse = EvaluationResult(
        "geotext",
        reverse_metrics,
        len(gallery),
        len(query),
        list(notes),
        _base_per_query(i2t),
        description + " (image -> text side)",
    )
    per_query = _base_per_query(t2i)
    per_query["reverse_rank"] = i2t.first_rank
    return EvaluationResult(
        "geotext", metrics, len(query), len(gallery), notes, per_query, description, reverse
    )


# ----------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Protocol:
    """A named evaluation convention: its options type and how it runs."""

    name: str
    description: str
    options: type
    run: Callable[[Embeddings, Embeddings, Any], EvaluationResult]
    #: every gallery item carrying the query's label is good (else: one positive per query)
    matches_by_label: bool = False


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "u1652",
            "University-1652 (layumi): distractors compete; R@1% = CMC[round(0.01 N)]; AP trapezoidal",
            U1652Options,
            lambda q, g, o: _u1652(q, g, o, False, "u1652"),
            True,
        ),
        Protocol(
            "u1652-s4g",
            "University-1652 as in Sample4Geo/DAC: gallery labels absent from the "
            "queries are junk; R@1% = CMC[round(0.01 N)]; AP trapezoidal",
            U1652Options,
            lambda q, g, o: _u1652(q, g, o, True, "u1652-s4g"),
            True,
        ),
        Protocol(
            "pairs",
            "CVUSA/CVACT (Sample4Geo): one match by id; rank = # scores strictly above; "
            "R@1% cut-off N // 100",
            CommonOptions,
            _pairs,
        ),
        Protocol(
            "vigor",
            "VIGOR (Sample4Geo): rank = # scores strictly above the positive; hit rate "
            "with semi-positives; R@1% = N // 100 (R@1%_vigor: int(0.01 N) + 1)",
            VigorOptions,
            _vigor,
        ),
        Protocol(
            "geobridge",
            "GeoBridge: one positive by id; AP = mean reciprocal rank; R@1% = top "
            "max(1, int(0.01 N)); L@50/100/150 and mean error (km)",
            GeoBridgeOptions,
            _geobridge,
        ),
        Protocol(
            "geotext",
            "GeoText-1652 (itm_eval): texts vs one gallery of every view, match by building; "
            "img_r* = text queries, txt_r* = image queries, r_mean of the six",
            CommonOptions,
            _geotext,
            True,
        ),
    )
}


def list_protocols() -> list[str]:
    """Names accepted by :func:`evaluate` and ``geobridge evaluate --protocol``."""
    return list(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a clear error listing the valid names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise EvaluationError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}") from None


def good_items(
    result: EvaluationResult, query_ids: Sequence[str], gallery_ids: Sequence[str]
) -> list[set[int]]:
    """The gallery indices that are good for each query under ``result``'s protocol (for reports
    that mark them): every item with the query's label (junk label excluded) for label-matching
    protocols, else the query's one positive (none when it has no positive in the gallery)."""
    if not get_protocol(result.protocol).matches_by_label:
        return [{int(i)} if i >= 0 else set() for i in result.per_query["positive_index"]]
    by_label: dict[str, set[int]] = {}
    for index, label in enumerate(gallery_ids):
        by_label.setdefault(str(label), set()).add(index)
    return [
        set() if str(label) == U1652_JUNK_LABEL else by_label.get(str(label), set()) for label in query_ids
    ]


def evaluate(query: Embeddings, gallery: Embeddings, protocol: str, **options: Any) -> EvaluationResult:
    """Evaluate query embeddings against a gallery under the named protocol.

    ``options``: ``top_k``, ``chunk_size``, ``progress`` for all; ``multi_query`` and ``rerank``
    for ``u1652`` and ``u1652-s4g``; ``semi_positives`` and
    ``radii_m`` for ``vigor``; ``match_by`` and ``radii_m`` for ``geobridge``. Unknown options
    are errors. For ``geotext`` the query side must be the texts and the gallery every image.
    """
    spec = get_protocol(protocol)
    parsed = _parse_options(spec.options, protocol, options)
    return spec.run(query, gallery, parsed)


__all__ = [
    "EvaluationError",
    "EvaluationResult",
    "PROTOCOLS",
    "Protocol",
    "evaluate",
    "get_protocol",
    "good_items",
    "list_protocols",
]
