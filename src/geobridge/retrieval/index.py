"""Search indexes behind one interface: exact chunked search (default) and FAISS.

Similarity is cosine: vectors are L2-normalised when added and queried, then compared by inner
product. ``create_index("exact")`` keeps the vectors and searches them exactly with
``topk``; any other spec is a FAISS index factory string (``"Flat"``, ``"IVF1024,PQ64"``,
``"HNSW32"``), built with the inner-product metric. Inputs may be any float array: conversion to
contiguous float32 happens inside.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from geobridge.atomic import atomic_path
from geobridge.retrieval.topk import TopK, topk

EXACT = "exact"
INDEX_FILES = {"exact": "index.npy", "faiss": "index.faiss"}


class SearchIndexError(ValueError):
    """An index cannot be built, trained, read or searched as asked."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows scaled to unit length (zero rows stay zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise SearchIndexError(f"vectors must be a 2-D array (N x D), got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise SearchIndexError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.all(np.abs(norms - 1.0) < 1e-5):
        return vectors  # already unit rows: no copy (matters for a 2 GB gallery)
    return vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)


class Index(ABC):
    """Cosine-similarity search over added vectors; results are row numbers in add order."""

    spec: str
    dim: int

    @abstractmethod
    def add(self, vectors: np.ndarray) -> None:
        """Append vectors (rows); an untrained FAISS index is trained on the first batch."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int) -> TopK:
        """Best ``k`` rows per query, best first; row -1 marks a missing result (FAISS only)."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, folder: Path) -> Path:
        """Write the index file into ``folder`` (atomically) and return its path."""

    @property
    def file_name(self) -> str:
        return INDEX_FILES[EXACT if self.spec == EXACT else "faiss"]

    def _check_dim(self, vectors: np.ndarray) -> np.ndarray:
        vectors = normalise(vectors)
        if vectors.shape[1] != self.dim:
            raise SearchIndexError(
                f"vectors have dimension {vectors.shape[1]}, this index holds dimension {self.dim}"
            )
        return vectors


class ExactIndex(Index):
    """All vectors in one float32 matrix, searched exactly in bounded-memory chunks."""

    spec = EXACT

    def __init__(self, dim: int, vectors: np.ndarray | None = None, chunk_size: int | None = None) -> None:
        self.dim = int(dim)
        self.chunk_size = chunk_size
        self.vectors = np.zeros((0, self.dim), np.float32) if vectors is None else self._check_dim(vectors)

    def add(self, vectors: np.ndarray) -> None:
        self.vectors = np.concatenate([np.asarray(self.vectors), self._check_dim(vectors)], axis=0)

    def search(self, query: np.ndarray, k: int) -> TopK:
        query = self._check_dim(query)
        if len(self) == 0:
            raise SearchIndexError("the index is empty")
        return topk(query, self.vectors, k, chunk_size=self.chunk_size)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def save(self, folder: Path) -> Path:
        path = Path(folder) / self.file_name
        with atomic_path(path, suffix=".npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(self.vectors, dtype=np.float32), allow_pickle=False)
        return path

    @classmethod
    def load(cls, path: Path, dim: int | None = None) -> ExactIndex:
        # Memory-mapped: a large gallery is paged in by the chunked search, not copied up front.
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
        if vectors.ndim != 2 or vectors.dtype != np.float32:
            raise SearchIndexError(
                f"{path} is not an N x D float32 matrix (shape {vectors.shape}, {vectors.dtype})"
            )
        if dim is not None and vectors.shape[1] != dim:
            raise SearchIndexError(f"{path} holds dimension {vectors.shape[1]}, expected {dim}")
        index = cls(vectors.shape[1])
        index.vectors = vectors
        return index


_IVF = re.compile(r"^IVF(\d+)")


class FaissIndex(Index):
    """A FAISS index built from a factory string with the inner-product metric.

    ``nprobe`` (IVF: inverted lists visited per query) and ``ef_search`` (HNSW: candidate list
    size) trade speed for recall at query time.
    """

    def __init__(
        self, dim: int, spec: str = "Flat", nprobe: int = 16, ef_search: int = 64, index=None
    ) -> None:
        import faiss

        self.dim = int(dim)
        self.spec = spec.strip()
        if self.spec.lower() == EXACT:
            raise SearchIndexError("'exact' is not a FAISS index string; use ExactIndex")
        if index is None:
            try:
                index = faiss.index_factory(self.dim, self.spec, faiss.METRIC_INNER_PRODUCT)
            except RuntimeError as err:
                raise SearchIndexError(
                    f"bad FAISS index string {self.spec!r} for dimension {self.dim}: expected e.g. "
                    f"'Flat', 'IVF1024,PQ64' (64 must divide the dimension) or 'HNSW32' ({_first_line(err)})"
                ) from None
        self.index = index
        self.nprobe = int(nprobe)
        self.ef_search = int(ef_search)
        self._apply_search_params()

    def _apply_search_params(self) -> None:
        import faiss

        try:
            faiss.extract_index_ivf(self.index).nprobe = self.nprobe
        except RuntimeError:
            pass  # not an IVF index
        hnsw = getattr(faiss.downcast_index(self.index), "hnsw", None)
        if hnsw is not None:
            hnsw.efSearch = self.ef_search

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def min_training_size(self) -> int:
        """Vectors needed to train this index (IVF lists, PQ's 256 centroids per sub-space)."""
        need = 1
        match = _IVF.match(self.spec)
        if match:
            need = max(need, int(match.group(1)))
        if "PQ" in self.spec:
            need = max(need, 256)
        return need

    def train(self, vectors: np.ndarray) -> None:
        vectors = self._check_dim(vectors)
        need = self.min_training_size()
        if vectors.shape[0] < need:
            raise SearchIndexError(
                f"FAISS index {self.spec!r} needs at least {need} vectors to train, got {vectors.shape[0]}; "
                "use fewer IVF lists, 'Flat', or the exact index for a small gallery"
            )
        try:
            self.index.train(vectors)
        except RuntimeError as err:
            raise SearchIndexError(f"training FAISS index {self.spec!r} failed: {_first_line(err)}") from None

    def add(self, vectors: np.ndarray) -> None:
        vectors = self._check_dim(vectors)
        if not self.is_trained:
            self.train(vectors)
        self.index.add(vectors)

    def search(self, query: np.ndarray, k: int) -> TopK:
        query = self._check_dim(query)
        if len(self) == 0:
            raise SearchIndexError("the index is empty")
        if k < 1:
            raise SearchIndexError(f"k must be at least 1, got {k}")
        k = min(int(k), len(self))
        scores, rows = self.index.search(query, k)
        return TopK(scores.astype(np.float32, copy=False), rows.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def save(self, folder: Path) -> Path:
        import faiss

        path = Path(folder) / self.file_name
        with atomic_path(path, suffix=".faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        return path

    @classmethod
    def load(cls, path: Path, spec: str, nprobe: int = 16, ef_search: int = 64) -> FaissIndex:
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise SearchIndexError(f"cannot read FAISS index {path}: {_first_line(err)}") from None
        return cls(index.d, spec, nprobe=nprobe, ef_search=ef_search, index=index)


def create_index(spec: str, dim: int, nprobe: int = 16, ef_search: int = 64) -> Index:
    """``"exact"`` (default search) or a FAISS factory string."""
    if spec.strip().lower() == EXACT:
        return ExactIndex(dim)
    return FaissIndex(dim, spec, nprobe=nprobe, ef_search=ef_search)


def load_index(
    folder: Path, spec: str, dim: int | None = None, nprobe: int = 16, ef_search: int = 64
) -> Index:
    """Read the index file a gallery folder holds for ``spec``."""
    folder = Path(folder)
    if spec.strip().lower() == EXACT:
        return ExactIndex.load(folder / INDEX_FILES[EXACT], dim=dim)
    return FaissIndex.load(folder / INDEX_FILES["faiss"], spec, nprobe=nprobe, ef_search=ef_search)


def _first_line(err: Exception) -> str:
    """FAISS's own reason, without its C++ source location."""
    text = " ".join(str(err).split())
    text = re.sub(r"Error in .*? at \S+:\d+: ", "", text)
    return text.removeprefix("Error: ")
