"""Exact ranks of good gallery items, streamed over chunks of queries with bounded memory.

For a chunk of queries we compute one ``chunk x N_gallery`` float32 score block (a matrix
product), then, without sorting the gallery, count for every good item how many non-junk items
outrank it (vectorised comparisons, or a ``searchsorted`` into the few good scores when a query
has several good items), and partially sort only for the top-k shown in reports. Memory is the
two embedding matrices plus a few score-block-sized buffers, whatever the number of queries.

Tie rules (``TieRule``), matched to the reference scripts:

* ``argsort-desc`` -- University-1652 (layumi) orders the gallery by
  ``np.argsort(score)[::-1]``. We use the stable version of that order: among equal scores the
  item with the *higher* gallery index comes first. (numpy's default sort gives no guarantee
  on ties; for small arrays it is insertion sort, which is stable and agrees with this rule.)
  An item j outranks a good item g iff ``s_j > s_g`` or (``s_j == s_g`` and ``j > g``), so the
  ranks are the positions in that total order once junk is removed.
* ``strictly-greater`` -- Sample4Geo (CVUSA / CVACT / VIGOR) counts the gallery items whose
  score is strictly greater than the true match's: ties go to the true match. Top-k lists under
  this rule break ties by the lower gallery index (as ``geobridge.retrieval.topk``).
* ``argsort-asc`` -- layumi's re-ranked University-1652 evaluation orders a precomputed
  *distance* matrix by ``np.argsort(distance)`` (ascending): among equal distances the lower
  gallery index comes first (stable sort). Only :func:`rank_distances` takes it.

Results are identical to computing the full score matrix and ranking each row naively.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from geobridge.retrieval.topk import top_k_rows

JUNK = -1  # gallery label code of an item removed from every query's ranking
DEFAULT_BLOCK_ELEMENTS = 2**25  # score-block size (floats) when no chunk size is given: 128 MB


class TieRule(str, Enum):
    """How equal scores are ordered (see the module docstring)."""

    ARGSORT_DESC = "argsort-desc"
    STRICTLY_GREATER = "strictly-greater"
    ARGSORT_ASC = "argsort-asc"


@dataclass(frozen=True)
class Relevance:
    """Which gallery items are good, or junk, for each query.

    ``query_labels`` (Q,) and ``gallery_labels`` (N,) are integer label codes: a query's good
    items are the gallery items with its code. Gallery items coded ``JUNK`` are removed from
    every ranking. ``semi_positives`` optionally gives, per query, gallery indices (VIGOR's
    semi-positives) whose number above the first good item is reported separately.
    """

    query_labels: np.ndarray
    gallery_labels: np.ndarray
    semi_positives: tuple[np.ndarray, ...] | None = None


@dataclass
class RankingResult:
    """Per-query ranks (0-based, junk removed) and top-k lists.

    ``first_rank[q]`` is the rank of q's best-placed good item and ``first_good_index[q]`` its
    gallery index, both ``-1`` when q has none.
    ``good_ranks[good_offsets[q]:good_offsets[q+1]]`` are all of q's good ranks, ascending.
    ``top_indices`` / ``top_scores`` (Q, k) hold the top-k non-junk gallery items in rank
    order (``-1`` / NaN padding when fewer exist). ``semi_positives_above[q]`` counts the
    semi-positives that outrank q's first good item (``None`` without semi-positives).
    """

    first_rank: np.ndarray
    first_good_index: np.ndarray
    good_ranks: np.ndarray
    good_offsets: np.ndarray
    top_indices: np.ndarray
    top_scores: np.ndarray
    semi_positives_above: np.ndarray | None
    n_candidates: int
    tie_rule: TieRule

    def good_ranks_of(self, query: int) -> np.ndarray:
        """All good ranks of one query, ascending."""
        return self.good_ranks[self.good_offsets[query] : self.good_offsets[query + 1]]


@dataclass(frozen=True)
class _GoodIndex:
    """Gallery indices grouped by label, to list each query's good items quickly."""

    order: np.ndarray  # gallery indices sorted by label
    start: np.ndarray  # (Q,) first position in ``order`` of the query's good items
    count: np.ndarray  # (Q,) number of good items


def _index_goods(query_labels: np.ndarray, gallery_labels: np.ndarray) -> _GoodIndex:
    order = np.argsort(gallery_labels, kind="stable")
    labels, first, counts = np.unique(gallery_labels[order], return_index=True, return_counts=True)
    pos = np.clip(np.searchsorted(labels, query_labels), 0, max(labels.size - 1, 0))
    found = (labels.size > 0) & (labels[pos] == query_labels) & (query_labels != JUNK)
    return _GoodIndex(
        order=order,
        start=np.where(found, first[pos], 0).astype(np.int64),
        count=np.where(found, counts[pos], 0).astype(np.int64),
    )


def _padded(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged index rows into (len, max) with -1 padding and a validity mask."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out, out >= 0


def rank_queries(
    query: np.ndarray,
    gallery: np.ndarray,
    relevance: Relevance,
    tie_rule: TieRule | str = TieRule.ARGSORT_DESC,
    top_k: int = 10,
    chunk_size: int | None = None,
    progress: bool = False,
) -> RankingResult:
    """Rank every query's good items among the non-junk gallery by dot-product score.

    ``query`` (Q, D) and ``gallery`` (N, D) are float32 vectors (normalise them first for
    cosine similarity). ``chunk_size`` queries are scored at a time; by default it keeps the
    score block near 128 MB.
    """
    tie_rule = TieRule(tie_rule)
    if tie_rule is TieRule.ARGSORT_ASC:
        raise ValueError("the argsort-asc rule orders distances: use rank_distances")
    query = np.ascontiguousarray(query, dtype=np.float32)
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query {query.shape} and gallery {gallery.shape} must be (Q, D) and (N, D)")
    n_query, n_gallery = query.shape[0], gallery.shape[0]
    query_labels = np.asarray(relevance.query_labels, dtype=np.int64)
    gallery_labels = np.asarray(relevance.gallery_labels, dtype=np.int64)
    if query_labels.shape != (n_query,) or gallery_labels.shape != (n_gallery,):
        raise ValueError("one label per query and per gallery item is required")
    semis = relevance.semi_positives
    if semis is not None and len(semis) != n_query:
        raise ValueError(f"{len(semis)} semi-positive lists for {n_query} queries")
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_BLOCK_ELEMENTS // max(n_gallery, 1))
    chunk_size = max(1, min(int(chunk_size), max(n_query, 1)))

    goods = _index_goods(query_labels, gallery_labels)
    junk = torch.from_numpy(np.flatnonzero(gallery_labels == JUNK))
    n_candidates = n_gallery - int(junk.numel())
    k = max(0, min(int(top_k), n_candidates))
    gallery_t = torch.from_numpy(gallery)

    first_rank = np.full(n_query, -1, dtype=np.int64)
    first_good = np.full(n_query, -1, dtype=np.int64)
    rank_rows: list[np.ndarray] = []
    top_indices = np.full((n_query, int(top_k)), -1, dtype=np.int64)
    top_scores = np.full((n_query, int(top_k)), np.nan, dtype=np.float32)
    semi_above = np.zeros(n_query, dtype=np.int64) if semis is not None else None

    starts = range(0, n_query, chunk_size)
    for lo in tqdm(starts, desc="ranking", unit="chunk", disable=not progress):
        hi = min(lo + chunk_size, n_query)
        scores = torch.from_numpy(query[lo:hi]) @ gallery_t.T
        if junk.numel():
            scores.index_fill_(1, junk, float("-inf"))
        counts = goods.count[lo:hi]
        width = int(counts.max(initial=0))
        if width:
            good_idx = goods.order[
                np.minimum(goods.start[lo:hi, None] + np.arange(width), goods.order.size - 1)
            ]
            valid = np.arange(width) < counts[:, None]
            ranks_np, best = _good_ranks(
                scores, torch.from_numpy(good_idx), torch.from_numpy(valid), tie_rule
            )
            rank_rows.append(ranks_np[valid])  # valid entries are each row's smallest, in order
            has_good = counts > 0
            first_rank[lo:hi][has_good] = ranks_np[has_good, 0]
            first_good[lo:hi][has_good] = best[has_good]
            if semis is not None and semi_above is not None:  # both or neither
                semi_above[lo:hi] = _semis_above(scores, semis[lo:hi], best, has_good, tie_rule)
        if k:
            idx, val = _top_k(scores, k, tie_rule)
            top_indices[lo:hi, :k] = idx
            top_scores[lo:hi, :k] = val

    offsets = np.concatenate([[0], np.cumsum(goods.count)]).astype(np.int64)
    good_ranks = np.concatenate(rank_rows) if rank_rows else np.zeros(0, dtype=np.int64)
    return RankingResult(
        first_rank=first_rank,
        first_good_index=first_good,
        good_ranks=good_ranks.astype(np.int64),
        good_offsets=offsets,
        top_indices=top_indices,
        top_scores=top_scores,
        semi_positives_above=semi_above,
        n_candidates=n_candidates,
        tie_rule=tie_rule,
    )


def rank_distances(distances: np.ndarray, relevance: Relevance, top_k: int = 10) -> RankingResult:
    """Rank a precomputed (Q, N) distance matrix (e.g. k-reciprocal re-ranked distances) by
    ``np.argsort(distance)`` ascending, stable (``TieRule.ARGSORT_ASC``), junk removed. The
    matrix is already in memory, so rows are simply sorted one at a time; ``top_scores`` hold
    the distances. Semi-positives are not supported."""
    distances = np.asarray(distances)
    n_query, n_gallery = distances.shape
    query_labels = np.asarray(relevance.query_labels, dtype=np.int64)
    gallery_labels = np.asarray(relevance.gallery_labels, dtype=np.int64)
    if query_labels.shape != (n_query,) or gallery_labels.shape != (n_gallery,):
        raise ValueError("one label per query and per gallery item is required")
    if relevance.semi_positives is not None:
        raise ValueError("rank_distances does not take semi-positives")
    candidates = gallery_labels != JUNK
    n_candidates = int(candidates.sum())
    k = max(0, min(int(top_k), n_candidates))
    first_rank = np.full(n_query, -1, dtype=np.int64)
    first_good = np.full(n_query, -1, dtype=np.int64)
    top_indices = np.full((n_query, int(top_k)), -1, dtype=np.int64)
    top_scores = np.full((n_query, int(top_k)), np.nan, dtype=np.float32)
    rows, counts = [], np.zeros(n_query, dtype=np.int64)
    for q in range(n_query):
        order = np.argsort(distances[q], kind="stable")
        order = order[candidates[order]]
        good = (
            np.flatnonzero(gallery_labels[order] == query_labels[q]) if query_labels[q] != JUNK else order[:0]
        )
        rows.append(good)
        counts[q] = good.size
        if good.size:
            first_rank[q], first_good[q] = good[0], order[good[0]]
        top_indices[q, :k] = order[:k]
        top_scores[q, :k] = distances[q, order[:k]]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    good_ranks = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    return RankingResult(
        first_rank,
        first_good,
        good_ranks,
        offsets,
        top_indices,
        top_scores,
        None,
        n_candidates,
        TieRule.ARGSORT_ASC,
    )


def _good_ranks(
    scores: torch.Tensor, good_idx: torch.Tensor, valid: torch.Tensor, tie_rule: TieRule
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (c, m) of each query's good items, each row ascending, padding at the end (huge).

    Also returns, per row, the gallery index of the best-placed good item. Counting runs in
    numpy (SIMD comparisons and ``count_nonzero``), several times faster than torch's here.
    """
    block = scores.numpy()
    thresholds = scores.gather(1, good_idx).masked_fill(~valid, float("inf")).numpy()
    perm = np.argsort(thresholds, axis=1, kind="stable")
    sorted_thr = np.take_along_axis(thresholds, perm, axis=1)
    sorted_idx = np.take_along_axis(good_idx.numpy(), perm, axis=1)
    greater = _count_above(block, sorted_thr, strict=True)
    equal = None
    if tie_rule is TieRule.ARGSORT_DESC:
        # items >= a threshold minus items > it: those equal to it (the good item itself included)
        equal = _count_above(block, sorted_thr, strict=False) - greater
    ranks = greater.astype(np.int64)
    finite = np.isfinite(sorted_thr)
    if equal is not None:
        # equal counts the good item itself; more than one means a tie to break by gallery index
        for row, col in zip(*np.nonzero((equal > 1) & finite)):
            tied = np.flatnonzero(block[row] == sorted_thr[row, col])
            ranks[row, col] += int(np.count_nonzero(tied > sorted_idx[row, col]))
    ranks = np.where(finite, ranks, np.iinfo(np.int64).max)
    order = np.argsort(ranks, axis=1, kind="stable")
    best = np.take_along_axis(sorted_idx, order[:, :1], axis=1)[:, 0]
    return np.take_along_axis(ranks, order, axis=1), best


PASSES_UP_TO = 32  # good items per query up to which one comparison pass per item is faster


def _count_above(block: np.ndarray, sorted_thr: np.ndarray, strict: bool) -> np.ndarray:
    """For ascending thresholds per row: how many scores are > (``strict``) or >= each one.

    Few thresholds: one vectorised comparison pass per threshold column (numpy's SIMD
    ``count_nonzero``). Many: ``searchsorted`` puts each score of a row in a bucket (how many
    thresholds lie below it) and a histogram of buckets, summed from the top, gives the counts.
    """
    rows, width = sorted_thr.shape
    compare = np.greater if strict else np.greater_equal
    if width <= PASSES_UP_TO:
        out = np.empty((rows, width), dtype=np.int64)
        mask = np.empty(block.shape, dtype=bool)
        for col in range(width):
            out[:, col] = np.count_nonzero(compare(block, sorted_thr[:, col : col + 1], out=mask), axis=1)
        return out
    side: Literal["left", "right"] = "left" if strict else "right"
    out = np.empty((rows, width), dtype=np.int64)
    for row in range(rows):
        bucket = np.searchsorted(sorted_thr[row], block[row], side=side)
        hist = np.bincount(bucket, minlength=width + 1)
        out[row] = np.cumsum(hist[::-1])[::-1][1:]  # threshold a is passed by buckets > a
    return out


def _semis_above(
    scores: torch.Tensor,
    semis: tuple[np.ndarray, ...],
    best: np.ndarray,
    has_good: np.ndarray,
    tie_rule: TieRule,
) -> np.ndarray:
    """Per row: how many semi-positives outrank the best-placed good item."""
    semi_idx, semi_valid = _padded([np.asarray(s, dtype=np.int64) for s in semis])
    if semi_idx.shape[1] == 0:
        return np.zeros(len(semis), dtype=np.int64)
    rows = torch.arange(scores.shape[0])
    best_t = torch.from_numpy(best)
    best_score = scores[rows, best_t].unsqueeze(1)
    semi_t = torch.from_numpy(np.maximum(semi_idx, 0))
    semi_scores = scores.gather(1, semi_t)
    beats = semi_scores > best_score
    if tie_rule is TieRule.ARGSORT_DESC:
        beats |= (semi_scores == best_score) & (semi_t > best_t.unsqueeze(1))
    beats &= torch.from_numpy(semi_valid) & (semi_t != best_t.unsqueeze(1))
    return np.where(has_good, beats.sum(1).numpy(), 0)


def _top_k(scores: torch.Tensor, k: int, tie_rule: TieRule) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (indices, scores) per row in rank order under ``tie_rule``."""
    return top_k_rows(scores, k, higher_index_first=tie_rule is TieRule.ARGSORT_DESC)
