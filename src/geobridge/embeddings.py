"""A set of embeddings and its interoperable ``.npz`` file.

The file holds ``emb`` (float32, N x D), ``ids`` (N strings: the location or class label) and
optionally ``lat`` / ``lon`` (float64 degrees), ``paths`` (N strings) and, in a VIGOR query
file, ``semi_positives`` (N x K strings, row i the gallery ids of row i's semi-positives, ``""``
padding a shorter list). Semi-positives belong to rows, not ids: two panoramas with the same
positive satellite may have different semi-positives. Any model's features saved this way can
be evaluated by ``geobridge evaluate --query Q.npz --gallery G.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from geobridge.atomic import atomic_path


class EmbeddingsFileError(ValueError):
    """An embeddings file is missing, empty or malformed."""


class _NpzArrays(TypedDict, total=False):
    """The arrays of an embeddings ``.npz`` (``emb`` and ``ids`` always, the rest when known)."""

    emb: np.ndarray
    ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    paths: np.ndarray
    semi_positives: np.ndarray


@dataclass
class Embeddings:
    """Vectors with their ids and, when known, coordinates and source paths."""

    emb: np.ndarray
    ids: np.ndarray
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    paths: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    semi_positives: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.emb = np.asarray(self.emb)
        self.ids = np.asarray(self.ids).astype(str)
        if self.emb.ndim != 2:
            raise EmbeddingsFileError(f"embeddings must be a 2-D array (N x D), got shape {self.emb.shape}")
        n = self.emb.shape[0]
        if self.ids.shape != (n,):
            raise EmbeddingsFileError(f"{n} embeddings but {self.ids.shape[0] if self.ids.ndim else 0} ids")
        for name in ("lat", "lon"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (n,):
                    raise EmbeddingsFileError(f"{name} has shape {value.shape}, expected ({n},)")
                setattr(self, name, value)
        if self.paths is not None:
            self.paths = np.asarray(self.paths).astype(str)
            if self.paths.shape != (n,):
                raise EmbeddingsFileError(f"paths has shape {self.paths.shape}, expected ({n},)")
        if self.semi_positives is not None:
            semi = self.semi_positives
            if not isinstance(semi, np.ndarray):  # ragged lists: pad with ""
                rows = [[str(x) for x in row] for row in semi]
                semi = np.full((len(rows), max((len(r) for r in rows), default=0)), "", dtype=object)
                for i, row in enumerate(rows):
                    semi[i, : len(row)] = row
            semi = np.asarray(semi).astype(str)
            if semi.ndim != 2 or semi.shape[0] != n:
                raise EmbeddingsFileError(f"semi_positives has shape {semi.shape}, expected ({n}, K)")
            self.semi_positives = semi

    def semi_positive_lists(self) -> list[list[str]] | None:
        """Each row's semi-positive gallery ids (padding dropped), or None when the file has none."""
        if self.semi_positives is None:
            return None
        return [[s for s in row.tolist() if s] for row in self.semi_positives]

    def __len__(self) -> int:
        return int(self.emb.shape[0])

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    @property
    def has_coordinates(self) -> bool:
        return self.lat is not None and self.lon is not None

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically."""
        arrays: _NpzArrays = {"emb": self.emb.astype(np.float32, copy=False), "ids": self.ids}
        if self.lat is not None:
            arrays["lat"] = self.lat
        if self.lon is not None:
            arrays["lon"] = self.lon
        if self.paths is not None:
            arrays["paths"] = self.paths
        if self.semi_positives is not None:
            arrays["semi_positives"] = self.semi_positives
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        """Read an embeddings ``.npz``; errors name the file and what is wrong."""
        path = Path(path)
        if not path.exists():
            raise EmbeddingsFileError(f"embeddings file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as err:
            raise EmbeddingsFileError(f"cannot read embeddings file {path}: {err}") from err
        for key in ("emb", "ids"):
            if key not in arrays:
                raise EmbeddingsFileError(
                    f"{path} has no '{key}' array (found: {', '.join(sorted(arrays)) or 'nothing'}); "
                    "an embeddings file needs 'emb' (N x D float32) and 'ids' (N strings)"
                )
        if arrays["emb"].size == 0:
            raise EmbeddingsFileError(f"{path} holds no embeddings (empty 'emb')")
        try:
            return cls(
                emb=arrays["emb"].astype(np.float32, copy=False),
                ids=arrays["ids"],
                lat=arrays.get("lat"),
                lon=arrays.get("lon"),
                paths=arrays.get("paths"),
                semi_positives=arrays.get("semi_positives"),
            )
        except EmbeddingsFileError as err:
            raise EmbeddingsFileError(f"{path}: {err}") from None
