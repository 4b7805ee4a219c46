"""Reports of evaluation results: JSON, a Markdown table, recall@K curves (PNG) and an HTML
page of example queries with their top-5 references and the true match marked.

Every report names the protocol of each result, so numbers from different conventions are
never mixed up silently.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from geobridge.atomic import atomic_path, atomic_write_text
from geobridge.evaluation import metrics as M
from geobridge.evaluation.protocols import EvaluationResult
from geobridge.images import open_image

Results = Mapping[str, EvaluationResult]
MAX_CURVE_K = 100


def _as_results(results: EvaluationResult | Results) -> dict[str, EvaluationResult]:
    if isinstance(results, EvaluationResult):
        return {"": results}
    return dict(results)


def is_distance_metric(key: str) -> bool:
    """Metric keys ending in a unit are distances, not percentages."""
    return key.endswith("_m") or key.endswith("_km")


def write_report_json(
    results: EvaluationResult | Results, path: str | Path, include_per_query: bool = False
) -> Path:
    """Write one result, or ``{direction: result}``, as JSON (atomically)."""
    if isinstance(results, EvaluationResult):
        payload = results.to_dict(include_per_query)
    else:
        payload = {"results": {name: r.to_dict(include_per_query) for name, r in results.items()}}
    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def _metric_keys(results: dict[str, EvaluationResult]) -> list[str]:
    keys: list[str] = []
    for result in results.values():
        keys.extend(k for k in result.metrics if k not in keys)
    return keys


def _format_metric(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if key.endswith("_km") else f"{value:.2f}"


def markdown_table(results: EvaluationResult | Results) -> str:
    """A Markdown table: one row per direction with protocol, counts and every metric.

    Recall / AP columns are percentages; columns ending in ``_m`` / ``_km`` are distances.
    """
    results = _as_results(results)
    keys = _metric_keys(results)
    header = ["direction", "protocol", "queries", "gallery", *keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        cells = [name or "-", result.protocol, str(result.n_query), str(result.n_gallery)]
        cells += [_format_metric(k, result.metrics.get(k)) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def recall_curve(result: EvaluationResult, max_k: int = MAX_CURVE_K) -> np.ndarray:
    """R@K in percent for K = 1..min(max_k, gallery size), from the per-query ranks."""
    length = max(1, min(max_k, result.n_gallery))
    return 100.0 * M.cmc_curve(np.asarray(result.per_query["rank"]), length)


def plot_recall_curves(
    results: EvaluationResult | Results, path: str | Path, title: str | None = None
) -> Path:
    """Plot R@K (K = 1..min(100, gallery)) for each direction into a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = _as_results(results)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    try:
        for name, result in results.items():
            curve = recall_curve(result)
            label = f"{name + ' ' if name else ''}({result.protocol}) R@1 {curve[0]:.1f}%"
            ax.plot(np.arange(1, curve.size + 1), curve, drawstyle="steps-post", label=label)
        ax.set_xscale("log")
        ticks = [
            k for k in (1, 2, 5, 10, 20, 50, 100) if k <= max(len(recall_curve(r)) for r in results.values())
        ]
        ax.set_xticks(ticks, [str(k) for k in ticks])
        ax.minorticks_off()
        ax.set_xlabel("K (top-K retrieved)")
        ax.set_ylabel("recall@K (%)")
        ax.set_ylim(0, 100.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(title or "Recall@K")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)


# ----------------------------------------------------------------------------------------------
# HTML examples


def _thumbnail(path: str | Path | None, size: int, embed: bool, page_dir: Path) -> str:
    """An ``<img>`` for the file: base64-embedded JPEG thumbnail, or a relative link."""
    if path is None or str(path) == "":
        return '<div class="missing">no image</div>'
    path = Path(path)
    if not embed:
        try:
            src = path.resolve().relative_to(page_dir.resolve()).as_posix()
        except ValueError:
            src = path.resolve().as_uri()
        return f'<img src="{html.escape(src)}" alt="{html.escape(path.name)}" loading="lazy">'
    try:
        image = open_image(path, max_side=size * 2)
        image.thumbnail((size * 2, size))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    except (OSError, ValueError):
        return f'<div class="missing">unreadable<br>{html.escape(path.name)}</div>'
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{data}" alt="{html.escape(path.name)}">'


#: Longest text shown on a text item's card (e.g. a GeoText-1652 description); the rest is cut.
MAX_CARD_TEXT = 400


def _item_card(
    paths: Sequence[str | Path | None] | None,
    texts: Sequence[str] | None,
    index: int,
    label: str,
    size: int,
    embed: bool,
    page_dir: Path,
) -> str:
    """What one item looks like on the page: its image, else its text (text queries), else its id."""
    path = None if paths is None else paths[index]
    if path is not None and str(path) != "":
        return _thumbnail(path, size, embed, page_dir)
    if texts is not None and texts[index] is not None:
        text = str(texts[index])
        text = text if len(text) <= MAX_CARD_TEXT else text[: MAX_CARD_TEXT - 1] + "…"
        return f'<div class="text">{html.escape(text)}</div>'
    return f'<div class="missing">no image<br>{label}</div>'


def _good_sets(truth: Sequence[int] | Sequence[Collection[int]] | np.ndarray) -> list[set[int]]:
    out = []
    for item in truth:
        if isinstance(item, (int, np.integer)):
            out.append({int(item)} if int(item) >= 0 else set())
        else:
            out.append({int(i) for i in item})
    return out


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.5em} .meta{color:#555;margin-bottom:1em}
table{border-collapse:collapse} td{padding:6px;vertical-align:top;text-align:center;font-size:12px}
tr{border-bottom:1px solid #ddd} img{display:block;max-height:%(px)dpx;max-width:%(w)dpx;margin:auto}
.cell{border:4px solid #ccc;border-radius:4px;padding:2px;background:#fff}
.hit{border-color:#1a9e3a} .miss{border-color:#d33} .query{border-color:#3366cc}
.truth{border-style:dashed;border-color:#1a9e3a}
.missing{width:%(px)dpx;height:%(px)dpx;display:flex;align-items:center;justify-content:center;background:#eee;color:#888}
.text{width:%(w)dpx;max-height:%(px)dpx;overflow:auto;text-align:left;font-size:11px;padding:4px;background:#f3f5ff}
.tag{font-weight:bold} .ok{color:#1a9e3a} .bad{color:#d33}
"""


def html_examples_section(
    query_paths: Sequence[str | Path | None] | None,
    gallery_paths: Sequence[str | Path | None] | None,
    top_indices: np.ndarray,
    truth: Sequence[int] | Sequence[Collection[int]] | np.ndarray,
    *,
    page_dir: str | Path = ".",
    ranks: np.ndarray | None = None,
    query_ids: Sequence[str] | None = None,
    gallery_ids: Sequence[str] | None = None,
    query_texts: Sequence[str] | None = None,
    gallery_texts: Sequence[str] | None = None,
    subtitle: str = "",
    n_examples: int = 16,
    top: int = 5,
    thumb_px: int = 112,
    embed: bool = True,
) -> str:
    """The HTML (a summary line and a table) of one direction's example queries, for a page
    written by :func:`write_html_examples` or :func:`write_html_sections`.

    Each item is shown as its image (``*_paths``), else its text (``*_texts``, e.g. text
    queries), else its id. ``page_dir`` is where the page will be, for linked thumbnails.
    """
    page_dir = Path(page_dir)
    goods = _good_sets(truth)
    top_indices = np.asarray(top_indices)
    n_query = top_indices.shape[0]
    per_query = {
        "query_paths": query_paths,
        "query_ids": query_ids,
        "query_texts": query_texts,
        "truth": goods,
    }
    wrong = [name for name, values in per_query.items() if values is not None and len(values) != n_query]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} and top_indices must have one entry per query ({n_query})")
    hit = np.array(
        [bool(top_indices.shape[1]) and int(top_indices[q, 0]) in goods[q] for q in range(n_query)],
        dtype=bool,
    )
    misses, hits = np.flatnonzero(~hit), np.flatnonzero(hit)
    n_miss = min(len(misses), (n_examples + 1) // 2)
    n_hit = min(len(hits), n_examples - n_miss)
    n_miss = min(len(misses), n_examples - n_hit)  # fill up with misses when hits are few
    picked = [*_spread(misses, n_miss), *_spread(hits, n_hit)]

    def gallery_card(g: int) -> str:
        return _item_card(gallery_paths, gallery_texts, g, gallery_label(g), thumb_px, embed, page_dir)

    def gallery_label(g: int) -> str:
        return html.escape(str(gallery_ids[g])) if gallery_ids is not None else str(g)

    rows = []
    for q in picked:
        qid = html.escape(str(query_ids[q])) if query_ids is not None else str(q)
        query_card = _item_card(query_paths, query_texts, q, qid, thumb_px, embed, page_dir)
        cells = [
            f'<td><div class="cell query">{query_card}</div>'
            f'query {qid}<br><span class="tag {"ok" if hit[q] else "bad"}">{"top-1 correct" if hit[q] else "top-1 wrong"}</span></td>'
        ]
        shown = [int(i) for i in top_indices[q, :top] if int(i) >= 0]
        for position, g in enumerate(shown, start=1):
            good = g in goods[q]
            mark = '<span class="tag ok">✓ true match</span>' if good else ""
            cells.append(
                f'<td><div class="cell {"hit" if good else "miss"}">{gallery_card(g)}'
                f"</div>#{position} {gallery_label(g)}<br>{mark}</td>"
            )
        missing_truth = sorted(goods[q] - set(shown))
        if missing_truth and not (goods[q] & set(shown)):
            g = missing_truth[0]
            rank_text = (
                f"rank {int(ranks[q]) + 1}" if ranks is not None and int(ranks[q]) >= 0 else "not retrieved"
            )
            cells.append(
                f'<td><div class="cell truth">{gallery_card(g)}</div>'
                f'true match {gallery_label(g)}<br><span class="tag ok">{rank_text}</span></td>'
            )
        elif not goods[q]:
            cells.append('<td><div class="missing">no true match in gallery</div></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")

    return (
        f'<div class="meta">{html.escape(subtitle)} {len(picked)} of {n_query} queries shown '
        f"({int(hit.sum())} top-1 correct overall); green = true match, red = wrong, dashed = true match "
        f"outside the top-{top}.</div><table>{''.join(rows)}</table>"
    )


def _page(title: str, body: str, thumb_px: int) -> str:
    style = _STYLE % {"px": thumb_px, "w": thumb_px * 2}
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def write_html_examples(
    query_paths: Sequence[str | Path | None] | None,
    gallery_paths: Sequence[str | Path | None] | None,
    top_indices: np.ndarray,
    truth: Sequence[int] | Sequence[Collection[int]] | np.ndarray,
    path: str | Path,
    *,
    ranks: np.ndarray | None = None,
    query_ids: Sequence[str] | None = None,
    gallery_ids: Sequence[str] | None = None,
    query_texts: Sequence[str] | None = None,
    gallery_texts: Sequence[str] | None = None,
    title: str = "Example queries",
    subtitle: str = "",
    n_examples: int = 16,
    top: int = 5,
    thumb_px: int = 112,
    embed: bool = True,
) -> Path:
    """A self-contained HTML page: example queries, their top-``top`` gallery items, and the
    true match (green; dashed when it is not in the top list, shown after it with its rank).

    ``truth`` gives per query its positive gallery index (-1: none) or a set of good indices.
    Examples are spread evenly over the queries, misses first so failures are easy to study.
    Thumbnails are embedded as base64 JPEG (``embed=True``) or linked by relative path; items
    without an image show their text (``query_texts`` / ``gallery_texts``) or their id.
    """
    path = Path(path)
    section = html_examples_section(
        query_paths,
        gallery_paths,
        top_indices,
        truth,
        page_dir=path.parent,
        ranks=ranks,
        query_ids=query_ids,
        gallery_ids=gallery_ids,
        query_texts=query_texts,
        gallery_texts=gallery_texts,
        subtitle=subtitle,
        n_examples=n_examples,
        top=top,
        thumb_px=thumb_px,
        embed=embed,
    )
    return atomic_write_text(path, _page(title, section, thumb_px))


def write_html_sections(
    sections: Mapping[str, str], path: str | Path, title: str = "Example queries", thumb_px: int = 112
) -> Path:
    """One self-contained HTML page holding several :func:`html_examples_section` outputs, each
    under its heading (e.g. one per retrieval direction); written atomically."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{section}" for heading, section in sections.items())
    return atomic_write_text(path, _page(title, body, thumb_px))


def _spread(indices: np.ndarray, count: int) -> list[int]:
    """``count`` items spread evenly over ``indices``."""
    if count <= 0 or len(indices) == 0:
        return []
    count = min(count, len(indices))
    positions = (np.arange(count) * len(indices)) // count  # distinct, evenly spaced
    return [int(indices[p]) for p in positions]
