"""Embedding under ``torchrun``: the inputs sharded over ranks, written as chunk files, merged in order.

    torchrun --nproc_per_node 4 -m geobridge embed --model M --manifest D --view satellite --out sat.npz
    torchrun --nproc_per_node 4 -m geobridge gallery build --model M --images D --out GALLERY

The inputs are cut into fixed chunks of :data:`CHUNK_SIZE` (chunk ``k`` is rank ``k % world``'s);
each rank embeds its chunks with the embedding engine on its own device and writes each chunk to
``WORK/chunk-<start>.npz`` atomically. After a barrier every rank reads the chunks back in input
order (so each holds the whole result; rank 0 writes the output and then removes ``WORK``). A run
that was interrupted resumes from the chunks already written: a chunk file is reused when its
fingerprint (the chunk's inputs, view, TTA, precision and the model's weights) matches, whatever
the number of ranks was. The ranks coordinate over a gloo process group (on GPUs too: only a
barrier goes through it); chunk files live on a disk every rank sees.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from geobridge.atomic import atomic_path
from geobridge.models.embedder import (
    EmbedOptions,
    ImageEncoding,
    UnreadableImageWarning,
    encode_images,
    encode_texts,
)
from geobridge.views import View

CHUNK_SIZE = 4096
BARRIER_TIMEOUT = _dt.timedelta(hours=12)  # a rank with nothing left to embed waits for the others


@dataclass(frozen=True)
class Ranks:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def ranks_from_env() -> Ranks:
    """RANK / WORLD_SIZE as torchrun sets them."""
    return Ranks(rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ.get("WORLD_SIZE", "1")))


def shard_dir_for(output: str | Path) -> Path:
    """Where the chunk files of ``output`` (an ``.npz`` or a gallery folder) are kept until merged."""
    output = Path(output)
    return output.with_name(output.name + ".shards")


def encode_sharded(
    model: Any,
    inputs: Sequence[Any],
    view: View | str,
    options: EmbedOptions,
    work_dir: str | Path,
    ranks: Ranks | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImageEncoding:
    """Embed ``inputs`` (image paths, or texts for ``View.TEXT``) over the ranks; every rank gets
    the whole result, in input order. Unreadable images are skipped and named in one warning."""
    view = View.parse(view)
    ranks = ranks or ranks_from_env()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    inputs = list(inputs)
    run_key = _run_key(model, view, options)
    starts = list(range(0, len(inputs), chunk_size))
    quiet = replace(options, progress=options.progress and ranks.is_main)
    for number, start in enumerate(starts):
        chunk = inputs[start : start + chunk_size]
        path = _chunk_path(work_dir, start)
        mine = number % ranks.world_size == ranks.rank
        if not mine or _fingerprint(run_key, chunk) == _stored_fingerprint(path):
            continue  # another rank's chunk, or written by an earlier run
        _write_chunk(path, _fingerprint(run_key, chunk), _encode(model, chunk, view, quiet), start)
    _barrier(ranks)
    merged = _merge([_chunk_path(work_dir, start) for start in starts], model)
    _barrier(ranks)  # every rank has read the chunks before rank 0 may remove them
    if merged.skipped:
        names = "; ".join(f"{name} ({reason})" for name, reason in merged.skipped.items())
        warnings.warn(
            f"skipped {len(merged.skipped)} unreadable image(s): {names}",
            UnreadableImageWarning,
            stacklevel=2,
        )
    return merged


def remove_shards(work_dir: str | Path) -> None:
    """Delete the chunk files once the merged output is safely written (rank 0)."""
    shutil.rmtree(work_dir, ignore_errors=True)


def release(ranks: Ranks | None = None) -> None:
    """End the process group the barrier started (at the end of a sharded command)."""
    if not (ranks or ranks_from_env()).sharded:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _encode(model: Any, chunk: list[Any], view: View, options: EmbedOptions) -> ImageEncoding:
    if view is View.TEXT:
        return ImageEncoding(emb=encode_texts(model, chunk, options), kept=list(range(len(chunk))))
    return encode_images(model, chunk, view, options, warn=False)


def _chunk_path(work_dir: Path, start: int) -> Path:
    return work_dir / f"chunk-{start:010d}.npz"


def _run_key(model: Any, view: View, options: EmbedOptions) -> str:
    from geobridge.retrieval.gallery import weights_hash

    return f"{view.value}|{options.tta}|{options.precision}|{weights_hash(model)}"


def _fingerprint(run_key: str, chunk: list[Any]) -> str:
    digest = hashlib.sha256(run_key.encode())
    for item in chunk:
        digest.update(str(item).encode() + b"\0")
    return digest.hexdigest()


def _stored_fingerprint(path: Path) -> str | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["fingerprint"])
    except (OSError, KeyError, ValueError):
        return None  # absent or half-written by a killed run: embed the chunk again


def _write_chunk(path: Path, fingerprint: str, encoding: ImageEncoding, start: int) -> None:
    names = list(encoding.skipped)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            fingerprint=np.array(fingerprint),
            emb=encoding.emb.astype(np.float32),
            kept=np.array(encoding.kept, dtype=np.int64) + start,
            skipped_names=np.array(names, dtype=str),
            skipped_reasons=np.array([encoding.skipped[n] for n in names], dtype=str),
        )


def _merge(paths: list[Path], model: Any) -> ImageEncoding:
    chunks: list[np.ndarray] = []
    kept: list[int] = []
    skipped: dict[str, str] = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            chunks.append(data["emb"])
            kept.extend(int(i) for i in data["kept"])
            skipped.update(zip(data["skipped_names"].tolist(), data["skipped_reasons"].tolist()))
    dim = int(getattr(model, "embed_dim", 0))
    emb = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, dim), np.float32)
    return ImageEncoding(emb=np.ascontiguousarray(emb, dtype=np.float32), kept=kept, skipped=skipped)


def _barrier(ranks: Ranks) -> None:
    if not ranks.sharded:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=BARRIER_TIMEOUT)
    dist.barrier()
