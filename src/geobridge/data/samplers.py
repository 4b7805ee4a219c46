"""Batch samplers for contrastive training.

* :class:`UniqueLocationBatchSampler`: every location at most once per batch (a duplicate would
  be a false negative for InfoNCE), optionally packing GPS neighbours into the same batch as hard
  negatives (Sample4Geo: the nearest few plus random ones from a wider ring). Distances are
  haversine on radians (:func:`geobridge.geo.haversine_m`), never degrees.
* The sampler is *resumable*: its order depends only on (seed, epoch), and ``state_dict`` holds
  the epoch and how many batches were already handed out, so a resumed run continues with the
  very next batch.
* Distributed: each of ``world_size`` ranks takes its contiguous share of every global batch, so
  the gathered loss sees exactly the global batch a single process would.
"""

from __future__ import annotations

from collections import deque
from typing import Iterator, Sequence

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
        self._cache: tuple[tuple[int, int], list[list[int]]] | None = None
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
        if self._cache is not None and self._cache[0] == (self.seed, int(epoch)):
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
            if self._knn is None or not batch:
                continue
            for candidate in self._neighbour_candidates(anchor, rng):
                if not batch:
                    break
                if not used[candidate] and self.keys[candidate] not in batch_keys:
                    add(candidate)
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
        self._cache = ((self.seed, int(epoch)), batches)
        return batches

    def _neighbour_candidates(self, anchor: int, rng: np.random.Generator) -> list[int]:
        assert self._knn is not None
        row = self._knn[anchor]
        near = list(row[: self._near])[: self.neighbours]
        extra: list[int] = []
        if self.ring and row.shape[0] > self._near:
            wider = row[self._near:]
            extra = list(rng.choice(wider, size=min(self.ring, wider.shape[0]), replace=False))
        return [int(i) for i in near + extra]

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
            yield batch[start:start + share] if self.world_size > 1 else batch
