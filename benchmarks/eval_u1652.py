"""Benchmark: streaming u1652 evaluation vs the matrix-product floor and the per-query reference.

On the same embeddings, in the same run:

* floor -- one float32 product of the full query x gallery score matrix (torch.mm), the least
  work any exact evaluation must do;
* ours -- ``geobridge.evaluation.protocols.evaluate(..., "u1652")`` end to end (input checks,
  chunked scores, ranks of every good item, trapezoidal AP, top-10 lists);
* reference -- University-1652's evaluate_gpu.py loop written with numpy (per query: score
  vector, argsort of the whole gallery, reverse, drop junk, locate goods, AP). It is timed on a
  subsample of queries and extrapolated linearly to all queries.

Two label layouts: "D2S-like" (one good item per query, 5 % distractor labels, a few junk
items) and "S2D-like" (10 good items per query). Peak memory is the process's peak RSS
(VmHWM, reset once the data is built), measured in a fresh subprocess per evaluation.

    python benchmarks/eval_u1652.py                 # 10,000 x 10,000 x 768, writes eval_u1652.md
    python benchmarks/eval_u1652.py --large-memory  # also 50,000 x 100,000 x 768 peak RSS
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_data(n_query: int, n_gallery: int, dim: int, layout: str, seed: int = 0):
    """Unit vectors: each query is its label's gallery vector plus noise."""
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((n_gallery, dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    if layout == "d2s":
        g_labels = np.arange(n_gallery)
        g_labels[: n_gallery // 200] = -1  # a few junk items
        usable = np.arange(n_gallery // 200, n_gallery - n_gallery // 20)  # last 5 %: distractors
        q_pos = rng.choice(usable, size=n_query, replace=n_query > usable.size)
    else:
        g_labels = np.arange(n_gallery) // 10
        q_pos = rng.integers(0, n_gallery, size=n_query)
    q_labels = g_labels[q_pos]
    query = gallery[q_pos] + 6.0 * rng.standard_normal((n_query, dim), dtype=np.float32) / np.sqrt(dim)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    return query.astype(np.float32), gallery, q_labels.astype(str), g_labels.astype(str)


def time_floor(query: np.ndarray, gallery: np.ndarray, repeats: int = 2) -> float:
    import torch

    q, g = torch.from_numpy(query), torch.from_numpy(gallery)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scores = q @ g.T
        best = min(best, time.perf_counter() - start)
        del scores
    return best


def time_ours(query, gallery, q_labels, g_labels, repeats: int = 2):
    from geobridge.embeddings import Embeddings
    from geobridge.evaluation.protocols import evaluate

    q, g = Embeddings(query, q_labels), Embeddings(gallery, g_labels)
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = evaluate(q, g, "u1652")
        best = min(best, time.perf_counter() - start)
    return best, result


def reference_u1652(query, gallery, q_labels, g_labels, indices):
    """University-1652's per-query loop (numpy); returns seconds and (R@1, AP) over ``indices``."""
    start = time.perf_counter()
    hits, ap_sum = 0, 0.0
    for i in indices:
        score = gallery @ query[i]
        index = np.argsort(score)[::-1]
        good_index = np.argwhere(g_labels == q_labels[i])
        junk_index = np.argwhere(g_labels == "-1")
        index = index[np.isin(index, junk_index, invert=True)]
        rows_good = np.argwhere(np.isin(index, good_index)).flatten()
        if rows_good.size == 0:
            continue
        hits += int(rows_good[0] == 0)
        ngood = len(good_index)
        for j in range(ngood):
            precision = (j + 1) / (rows_good[j] + 1)
            old = j / rows_good[j] if rows_good[j] != 0 else 1.0
            ap_sum += (1.0 / ngood) * (old + precision) / 2
    return time.perf_counter() - start, hits, ap_sum


def peak_rss_child(n_query: int, n_gallery: int, dim: int, layout: str) -> dict:
    """Run one evaluation in a fresh process; report its peak RSS and the data's own size."""
    code = f"""
import json, resource, sys, time
sys.path.insert(0, {str(HERE)!r})
from eval_u1652 import make_data
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import evaluate
import torch  # imported before the baseline so its libraries count as baseline
def status(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024
q, g, ql, gl = make_data({n_query}, {n_gallery}, {dim}, {layout!r})
base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
t = time.perf_counter()
r = evaluate(Embeddings(q, ql), Embeddings(g, gl), "u1652")
sec = time.perf_counter() - t
peak = status("VmHWM:")
print(json.dumps({{"baseline_mb": base, "peak_mb": peak, "seconds": sec, "r1": r.metrics["R@1"],
                  "data_mb": (q.nbytes + g.nbytes) / 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved floor/ours repeats (best is kept)"
    )
    parser.add_argument(
        "--reference-queries", type=int, default=300, help="subsample timed for the reference"
    )
    parser.add_argument(
        "--large-memory", action="store_true", help="also measure 50,000 x 100,000 x 768 peak RSS"
    )
    parser.add_argument("--out", type=Path, default=HERE / "eval_u1652.md")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: tiny sizes, prints the table, writes no file"
    )
    args = parser.parse_args()
    if args.smoke:
        args.queries, args.gallery, args.dim, args.repeats, args.reference_queries, args.out = (
            200,
            300,
            32,
            1,
            20,
            None,
        )
        args.large_memory = False

    load = os.getloadavg()
    rows = []
    for layout, label in (
        ("d2s", "D2S-like (1 good / query, distractors, junk)"),
        ("s2d", "S2D-like (10 good / query)"),
    ):
        query, gallery, q_labels, g_labels = make_data(args.queries, args.gallery, args.dim, layout)
        floor, ours = float("inf"), float("inf")
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            floor = min(floor, time_floor(query, gallery, repeats=1))
            seconds, result = time_ours(query, gallery, q_labels, g_labels, repeats=1)
            ours = min(ours, seconds)
        sub = np.random.default_rng(1).choice(
            args.queries, size=min(args.reference_queries, args.queries), replace=False
        )
        ref_sec, ref_hits, ref_ap = reference_u1652(query, gallery, q_labels, g_labels, sub)
        ref_full = ref_sec * args.queries / sub.size
        # the two implementations agree on the subsample
        ours_hits = int((result.per_query["rank"][sub] == 0).sum())
        ours_ap = float(result.per_query["ap"][sub].sum())
        agree = ours_hits == ref_hits and abs(ours_ap - ref_ap) < 1e-6 * max(1.0, ref_ap)
        memory = peak_rss_child(args.queries, args.gallery, args.dim, layout)
        rows.append(
            dict(
                layout=label,
                floor=floor,
                ours=ours,
                ref=ref_full,
                ref_sub=sub.size,
                agree=agree,
                r1=result.metrics["R@1"],
                ap=result.metrics["AP"],
                memory=memory,
            )
        )
        print(json.dumps({k: v for k, v in rows[-1].items()}, default=str), flush=True)

    large = peak_rss_child(50_000, 100_000, args.dim, "d2s") if args.large_memory else None
    if large:
        print(json.dumps(large), flush=True)

    try:
        cpu = next(
            line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    import torch

    lines = [
        "# Benchmark: streaming `u1652` evaluation",
        "",
        f"- Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}",
        f"- Load average at start: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (the machine is shared with other engineers' jobs; figures are the best of {args.repeats} interleaved runs)",
        f"- Size: {args.queries:,} queries x {args.gallery:,} gallery x {args.dim} (float32, unit vectors), protocol `u1652`",
        '- floor = one float32 product of the full score matrix (torch.mm); ours = `evaluate(q, g, "u1652")` end to end;',
        "  reference = University-1652's per-query loop (score, argsort of the gallery, drop junk, AP) in numpy, "
        f"timed on {rows[0]['ref_sub']} random queries and extrapolated linearly to all {args.queries:,}.",
        "- RSS: whole evaluating process (fresh subprocess): current RSS once torch and the data are loaded (baseline), and the peak (VmHWM, reset at that point) during `evaluate`.",
        "",
        "| layout | floor (s) | ours (s) | ours / floor | reference (s, extrapolated) | reference / floor | reference / ours | agree on subsample | R@1 | AP | RSS baseline -> peak (MB) | data (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["memory"]
        lines.append(
            f"| {r['layout']} | {r['floor']:.2f} | {r['ours']:.2f} | {r['ours'] / r['floor']:.2f}x | {r['ref']:.1f} | "
            f"{r['ref'] / r['floor']:.1f}x | {r['ref'] / r['ours']:.1f}x | {'yes' if r['agree'] else 'NO'} | {r['r1']:.2f} | {r['ap']:.2f} | "
            f"{m['baseline_mb']:.0f} -> {m['peak_mb']:.0f} | {m['data_mb']:.0f} |"
        )
    if large:
        lines += [
            "",
            f"Large run (50,000 x 100,000 x {args.dim}, D2S-like): {large['seconds']:.0f} s, peak RSS {large['peak_mb']:.0f} MB "
            f"(baseline with data {large['baseline_mb']:.0f} MB; the data alone is {large['data_mb']:.0f} MB); target < 4096 MB.",
        ]
    lines.append("")
    if args.out is None:
        print("\n".join(lines))
    else:
        args.out.write_text("\n".join(lines))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
