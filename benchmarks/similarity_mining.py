"""Similarity-neighbour mining (Sample4Geo's hard negatives): time and peak memory of the chunked
:func:`geobridge.data.samplers.similarity_neighbours` against the whole N x N matrix at once.

Both rank with the same algorithm (``argpartition`` of the similarities, then sort the top k);
the reference just builds the full matrix. Peak memory is traced NumPy allocations
(``tracemalloc``), inputs excluded. Writes ``benchmarks/similarity_mining.md``.

    nice -n 15 .venv/bin/python benchmarks/similarity_mining.py [N] [D] [K]
    .venv/bin/python benchmarks/similarity_mining.py --smoke     # seconds: N 500, D 16, k 8, no file
"""

from __future__ import annotations

import os
import platform
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np

from geobridge.data.samplers import similarity_neighbours


def full_matrix(query: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    sim = query @ reference.T
    np.fill_diagonal(sim, -np.inf)
    part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sim, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def measure(fn, *args) -> tuple[np.ndarray, float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    smoke = "--smoke" in sys.argv[1:]  # seconds: N 500, D 16, k 8, writes no file
    given = [a for a in sys.argv[1:] if a != "--smoke"]
    defaults = ["500", "16", "8"] if smoke else ["20000", "256", "64"]
    n, dim, k = (int(a) for a in (given + defaults[len(given) :])[:3])
    rng = np.random.default_rng(0)
    query = rng.normal(size=(n, dim)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    reference = query + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    load = os.getloadavg()
    ref_out, ref_s, ref_mb = measure(full_matrix, query, reference, k)
    out, s, mb = measure(lambda q, r, kk: similarity_neighbours(q, r, kk), query, reference, k)
    same = bool(np.array_equal(out, ref_out))
    lines = [
        "# Similarity-neighbour mining: chunked vs the whole similarity matrix",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}",
        f"- date: {datetime.now().isoformat(timespec='minutes')}",
        f"- load average before the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        + (" (machine shared with other jobs: times are indicative)" if load[0] > 1.5 else ""),
        f"- N = {n:,} locations, D = {dim}, k = {k}; random unit embeddings, query vs a noisy copy",
        "- reference: the same ranking on the full N x N matrix (float32) in one go",
        "- peak = traced NumPy allocations during the call (inputs excluded)",
        "",
        "| method | seconds | peak memory (MB) | vs reference (time) | vs reference (memory) |",
        "|---|---|---|---|---|",
        f"| full N x N matrix (reference) | {ref_s:.2f} | {ref_mb:,.0f} | 1.00x | 1.00x |",
        f"| `similarity_neighbours` (chunk 1024) | {s:.2f} | {mb:,.0f} | {s / ref_s:.2f}x | {mb / ref_mb:.3f}x |",
        "",
        f"Same neighbours as the reference: {'yes' if same else 'NO'}.",
        f"At N = 50,000 the full matrix alone would take {50_000**2 * 4 / 2**30:.1f} GB; the chunked"
        f" search holds 1024 x N similarities at a time ({1024 * 50_000 * 4 / 2**20:.0f} MB for N = 50,000).",
    ]
    target = Path(__file__).with_suffix(".md")
    if not smoke:
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
