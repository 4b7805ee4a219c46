"""Batch samplers for contrastive training.

* :class:`UniqueLocationBatchSampler`: every location at most once per batch (a duplicate would
  be a false negative for InfoNCE), optionally packing GPS neighbours into the same batch as hard
  negatives (Sample4Geo: the nearest few plus random ones from a wider ring). Distances are
  haversine on radians (:func:`geobridge.geo.haversine_m`), never degrees.
* The sampler is *resumable*: its order depends only on (seed, epoch), and ``state_dict`` holds
  the epoch and how many batches were already handed out, so a resumed run continues with the
  very next batch.
* :class:`SimilarityNeighbourBatchSampler`: the same, packing *similarity* neighbours mined
  with the current model (Sample4Geo) once a table from :func:`similarity_neighbours` is set;
  until then it packs GPS neighbours (if configured), as Sample4Geo does in its first epoch.
* Distributed: each of ``world_size`` ranks takes its contiguous share of every global batch, so
  the gathered loss sees exactly the global batch a single process would.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from geobridge.geo import haversine_m


def gps_neighbours(lat: np.ndarray, lon: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Indices (N, k) of each point's k nearest other points by great-circle distance."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    n = lat.shape[0]
    k = min(int(k), n - 1)
    out = np.zeros((n, max(k, 0)), dtype=np.int64)
    if k <= 0:
        return out
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        dist = haversine_m(lat[start:stop, None], lon[start:stop, None], lat[None, :], lon[None, :])
        dist[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(dist, part, axis=1).argsort(axis=1, kind="stable")
        out[start:stop] = np.take_along_axis(part, order, axis=1)
    return out


def similarity_neighbours(
    query: np.ndarray,
    reference: np.ndarray,
    k: int,
    groups: Sequence[object] | None = None,
    query_valid: np.ndarray | None = None,
    reference_valid: np.ndarray | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Indices (N, k) of each location's k most similar *other* locations, most similar first.

    Row ``i`` ranks locations ``j != i`` by the query -> reference similarity ``query[i] .
    reference[j]`` (rows are L2-normalised, so this is the cosine): the references a query is
    most easily confused with, i.e. Sample4Geo's similarity neighbours. Queries are processed
    ``chunk`` rows at a time, so memory is ``chunk x N`` and never ``N x N``.

    Args:
        query, reference: (N, D) embeddings of the same N locations in two views.
        groups: optional per-location key; locations sharing ``i``'s key are excluded from row
            ``i`` too (several items showing one place are positives, not negatives).
        query_valid, reference_valid: optional (N,) masks of locations that have the view; an
            invalid query gets an all ``-1`` row and an invalid reference is never a neighbour.

    Rows with fewer than ``k`` candidates are padded with ``-1``.
    """
    query = np.asarray(query, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if query.ndim != 2 or query.shape != reference.shape:
        raise ValueError(f"query and reference must both be (N, D); got {query.shape} and {reference.shape}")
    n = query.shape[0]
    k = int(k)
    if k < 1:
        raise ValueError("k must be >= 1")
    codes = (
        np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1]
        if groups is not None
        else None
    )
    if codes is not None and codes.shape[0] != n:
        raise ValueError(f"groups has {codes.shape[0]} entries for {n} locations")
    q_ok = np.ones(n, dtype=bool) if query_valid is None else np.asarray(query_valid, dtype=bool)
    r_ok = np.ones(n, dtype=bool) if reference_valid is None else np.asarray(reference_valid, dtype=bool)
    out = np.full((n, k), -1, dtype=np.int64)
    take = min(k, n)
    for start in range(0, n, int(chunk)):
        stop = min(start + int(chunk), n)
        sim = query[start:stop] @ reference.T  # (chunk, N)
        sim[:, ~r_ok] = -np.inf
        rows = np.arange(stop - start)
        sim[rows, np.arange(start, stop)] = -np.inf  # never itself
        if codes is not None:
            sim[codes[start:stop, None] == codes[None, :]] = -np.inf
        part = np.argpartition(-sim, take - 1, axis=1)[:, :take]
        part_sim = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-part_sim, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best_sim = np.take_along_axis(part_sim, order, axis=1)
        best[~np.isfinite(best_sim)] = -1
        best[~q_ok[start:stop]] = -1
        out[start:stop, :take] = best
    return out


class UniqueLocationBatchSampler:
    """Yields this rank's indices of each global batch; no location key twice in a batch.

    Args:
        keys: per dataset item, the location it shows (items with equal keys never share a batch).
        batch_size: the *global* batch size (all ranks together).
        seed: order seed; the order of epoch e depends only on (seed, e).
        lat, lon: item coordinates (degrees), needed when ``neighbours`` > 0.
        neighbours: how many GPS neighbours to pack after each randomly drawn anchor.
        near: the neighbours are drawn from the ``near`` closest (nearest first), plus
            ``ring`` random ones from the next wider ring of ``4 * near``.
        drop_last: drop incomplete batches (keeps batch sizes equal across ranks; needed when
            world_size > 1).
        rank, world_size: this process's share of every global batch.
    """

    def __init__(
        self,
        keys: Sequence[str],
        batch_size: int,
        seed: int = 0,
        lat: Sequence[float] | None = None,
        lon: Sequence[float] | None = None,
        neighbours: int = 0,
        near: int = 8,
        ring: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if batch_size % world_size:
            raise ValueError(f"global batch size {batch_size} is not divisible by world size {world_size}")
        if world_size > 1 and not drop_last:
            raise ValueError("drop_last must be True when world_size > 1 (equal shares per rank)")
        self.keys = [str(k) for k in keys]
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.neighbours = int(neighbours)
        self.ring = int(ring)
        self.drop_last = bool(drop_last)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self._knn: np.ndarray | None = None
        self._cache: tuple[tuple[int, int, int], list[list[int]]] | None = None
        self._version = 0  # bumped whenever the neighbour table changes (invalidates the cache)
        if self.neighbours > 0:
            if lat is None or lon is None:
                raise ValueError("GPS hard negatives need lat and lon for every item")
            self._knn = gps_neighbours(np.asarray(lat), np.asarray(lon), k=max(near, 1) * (5 if ring else 1))
            self._near = max(near, 1)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.seed = int(state.get("seed", self.seed))

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All global batches of ``epoch`` (deterministic in seed and epoch; cached)."""
        if self._cache is not None and self._cache[0] == (self.seed, int(epoch), self._version):
            return self._cache[1]
        rng = np.random.default_rng([self.seed, int(epoch)])
        pending = deque(int(i) for i in rng.permutation(len(self.keys)))
        used = np.zeros(len(self.keys), dtype=bool)
        batches: list[list[int]] = []
        batch: list[int] = []
        batch_keys: set[str] = set()
        blocked: list[int] = []  # items whose location is already in the open batch

        def add(index: int) -> None:
            nonlocal batch, batch_keys, blocked
            batch.append(index)
            batch_keys.add(self.keys[index])
            used[index] = True
            if len(batch) == self.batch_size:
                batches.append(batch)
                batch, batch_keys = [], set()
                pending.extendleft(reversed(blocked))
                blocked = []

        while pending:
            anchor = pending.popleft()
            if used[anchor]:
                continue
            if self.keys[anchor] in batch_keys:
                blocked.append(anchor)
                continue
            add(anchor)
            if not batch:
                continue
            candidates, limit = self._neighbour_candidates(anchor, rng)
            added = 0
            for candidate in candidates:
                if not batch or added >= limit:
                    break
                if not used[candidate] and self.keys[candidate] not in batch_keys:
                    add(candidate)
                    added += 1
        while blocked:  # the tail: open a new batch for items that could not join the last one
            if batch:
                batches.append(batch)
            batch, batch_keys, rest = [], set(), blocked
            blocked = []
            for index in rest:
                if self.keys[index] in batch_keys:
                    blocked.append(index)
                else:
                    batch.append(index)
                    batch_keys.add(self.keys[index])
        if batch and (not self.drop_last or len(batch) == self.batch_size):
            batches.append(batch)
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        self._cache = ((self.seed, int(epoch), self._version), batches)
        return batches

    def _neighbour_candidates(self, anchor: int, rng: np.random.Generator) -> tuple[list[int], int]:
        """The items to try packing after ``anchor`` (in order) and how many of them may join."""
        if self._knn is None:
            return [], 0
        row = self._knn[anchor]
        near = list(row[: self._near])[: self.neighbours]
        extra: list[int] = []
        if self.ring and row.shape[0] > self._near:
            wider = row[self._near :]
            extra = list(rng.choice(wider, size=min(self.ring, wider.shape[0]), replace=False))
        candidates = [int(i) for i in near + extra]
        return candidates, len(candidates)

    def __len__(self) -> int:
        """Batches per epoch (the current epoch's count)."""
        return len(self.global_batches(self.epoch))

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches(self.epoch)
        share = self.batch_size // self.world_size
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1
            start = self.rank * share
            yield batch[start : start + share] if self.world_size > 1 else batch


class SimilarityNeighbourBatchSampler(UniqueLocationBatchSampler):
    """:class:`UniqueLocationBatchSampler` that packs similarity neighbours as hard negatives.

    After each randomly drawn anchor it adds up to ``sim_neighbours`` of the anchor's mined
    neighbours (a row of :func:`similarity_neighbours`, most similar first) that are not used
    yet this epoch and whose location is not in the batch, so the model meets the references
    it currently confuses in the same InfoNCE batch. Until :meth:`set_similarity_neighbours`
    gives it a table (and after it is cleared with ``None``) it behaves like its parent: GPS
    neighbours if ``neighbours`` > 0, else plain unique-location batches; that is Sample4Geo's
    order (GPS neighbours first, similarity neighbours once the model has been evaluated).

    The batches of an epoch depend only on (seed, epoch, table): the caller must set the same
    table again on resume (the engine keeps it in its checkpoint). Other arguments as the parent.
    """

    def __init__(self, keys: Sequence[str], batch_size: int, sim_neighbours: int, **kwargs: object) -> None:
        super().__init__(keys, batch_size, **kwargs)  # type: ignore[arg-type]
        if sim_neighbours < 1:
            raise ValueError("sim_neighbours must be >= 1 (use UniqueLocationBatchSampler for none)")
        self.sim_neighbours = int(sim_neighbours)
        self._table: np.ndarray | None = None

    @property
    def similarity_table(self) -> np.ndarray | None:
        return self._table

    def set_similarity_neighbours(self, table: np.ndarray | None) -> None:
        """Use ``table`` (N, pool) of neighbour indices (``-1`` = none) from now on; ``None``
        falls back to GPS neighbours. Batches already handed out this epoch are not redrawn, so
        set it before the epoch's first batch."""
        if table is not None:
            table = np.asarray(table, dtype=np.int64)
            if table.ndim != 2 or table.shape[0] != len(self.keys):
                raise ValueError(f"similarity table must be ({len(self.keys)}, pool); got {table.shape}")
            if table.size and (table.max() >= len(self.keys) or table.min() < -1):
                raise ValueError("similarity table holds indices outside the dataset")
        self._table = table
        self._version += 1

    def _neighbour_candidates(self, anchor: int, rng: np.random.Generator) -> tuple[list[int], int]:
        if self._table is None:
            return super()._neighbour_candidates(anchor, rng)
        row = self._table[anchor]
        return [int(i) for i in row if i >= 0], self.sim_neighbours


class ModalityBalancedBatchSampler(UniqueLocationBatchSampler):
    """Batches in which every group (a modality, or a source of a mixture) has its share.

    ``groups`` names each item's group (e.g. which query views it has: ``drone+satellite``,
    ``street+satellite``, or the dataset it comes from). Every global batch gives each of the
    G groups its share of the ``batch_size`` slots: equal shares by default (GLEAM-C's balanced
    fusion), or in proportion to ``weights`` (group -> weight, a user's mixture). Fractions of a
    slot are carried over from batch to batch (largest credit first, ties by group name), so
    over many batches every group gets exactly its share, and a small source is seen as often
    per batch as its weight says whatever its size. An epoch has as many batches as an ordinary
    one (``len(keys) // batch_size``): each group is read through reshuffled permutations, so
    small groups repeat within an epoch and large ones continue where they stopped only within
    the epoch (every epoch starts afresh from (seed, epoch)). Locations stay unique per batch.
    Distributed and resume behaviour as :class:`UniqueLocationBatchSampler`.
    """

    def __init__(
        self,
        keys: Sequence[str],
        batch_size: int,
        groups: Sequence[str],
        weights: Mapping[str, float] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(keys, batch_size, **kwargs)  # type: ignore[arg-type]
        if len(groups) != len(self.keys):
            raise ValueError(f"groups has {len(groups)} entries for {len(self.keys)} items")
        if self.neighbours:
            raise ValueError("modality-balanced batches do not pack GPS neighbours; set neighbours=0")
        self.groups = [str(g) for g in groups]
        self.group_names = sorted(set(self.groups))
        weights = {name: 1.0 for name in self.group_names} if weights is None else dict(weights)
        unknown = sorted(set(weights) - set(self.group_names))
        absent = [name for name in self.group_names if name not in weights]
        if unknown or absent:
            raise ValueError(
                f"weights must name exactly the groups {self.group_names}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {absent}" if absent else "")
            )
        if any(not w > 0 for w in weights.values()):
            raise ValueError(f"group weights must be positive, got {weights}")
        total = sum(weights.values())
        self.quotas = {name: self.batch_size * weights[name] / total for name in self.group_names}
        self._members = {
            name: np.array([i for i, g in enumerate(self.groups) if g == name]) for name in self.group_names
        }
        for name, members in self._members.items():
            share = math.ceil(self.quotas[name]) + (0 if self.quotas[name].is_integer() else 1)
            share = min(share, self.batch_size)
            distinct = len({self.keys[i] for i in members})
            if distinct < share:
                raise ValueError(
                    f"group {name!r} has {distinct} distinct locations, fewer than its "
                    f"share {share} of a batch of {self.batch_size}; lower the batch size"
                )

    def slot_counts(self, n_batches: int) -> list[dict[str, int]]:
        """How many slots each group gets in each of the first ``n_batches`` batches."""
        credit = {name: 0.0 for name in self.group_names}
        out = []
        for _ in range(n_batches):
            counts = {}
            for name in self.group_names:
                credit[name] += self.quotas[name]
                counts[name] = int(math.floor(credit[name] + 1e-9))
            left = self.batch_size - sum(counts.values())
            ranked = sorted(self.group_names, key=lambda g: (-(credit[g] - counts[g]), g))
            for name in ranked[:left]:
                counts[name] += 1
            for name in self.group_names:
                credit[name] -= counts[name]
            out.append(counts)
        return out

    def global_batches(self, epoch: int) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == (self.seed, int(epoch), self._version):
            return self._cache[1]
        rng = np.random.default_rng([self.seed, int(epoch)])
        streams = {name: deque[int]() for name in self.group_names}
        batches: list[list[int]] = []
        for counts in self.slot_counts(len(self.keys) // self.batch_size):
            batch: list[int] = []
            batch_keys: set[str] = set()
            for name in self.group_names:
                want = counts[name]
                stream, deferred = streams[name], []
                while want:
                    if not stream:
                        stream.extend(int(i) for i in rng.permutation(self._members[name]))
                    index = stream.popleft()
                    if self.keys[index] in batch_keys:
                        deferred.append(index)  # this place is in the batch already: keep it for later
                        continue
                    batch.append(index)
                    batch_keys.add(self.keys[index])
                    want -= 1
                stream.extendleft(reversed(deferred))
            batches.append(batch)
        self._cache = ((self.seed, int(epoch), self._version), batches)
        return batches
