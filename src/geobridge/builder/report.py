"""The build report: ``report.md`` (counts per stage, per gate and per crop scale, every skipped
item with its reason) plus ``report.png`` (a map of the kept locations) and ``samples.png``
(sample triples: drone crop, street panorama, satellite image, and the text)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from geobridge.atomic import atomic_path, atomic_write_text
from geobridge.images import ImageError, open_image

MAX_LISTED = 50


def _reason_kind(reason: str) -> str:
    """A short family name for a skip reason, to count them."""
    lowered = reason.lower()
    for key, kind in (
        ("html", "HTML instead of an image"),
        ("off the edge", "crop off the edge"),
        ("nodata", "crop mostly nodata"),
        ("no geo-reference", "no geo-reference"),
        ("cannot be transformed", "untransformable CRS"),
        ("http ", "HTTP error"),
        ("missing", "missing file/tile"),
        ("duplicate", "duplicate footprint"),
        ("quality gate", "quality gate"),
        ("outside footprints", "panorama outside footprints"),
        ("not utf-8", "not UTF-8"),
        ("truncated or corrupt", "truncated or corrupt file"),
        ("pixel budget", "too many pixels"),
    ):
        if key in lowered:
            return kind
    return "other"


def _skip_table(title: str, items: list[dict]) -> list[str]:
    if not items:
        return []
    lines = [f"### {title} ({len(items)})", "", "| item | reason |", "|---|---|"]
    for it in items[:MAX_LISTED]:
        lines.append(f"| `{it['item']}` | {it['reason'].replace('|', '/')} |")
    if len(items) > MAX_LISTED:
        lines.append(f"| ... | {len(items) - MAX_LISTED} more |")
    return lines + [""]


def write_report(out: Path, summaries: dict[str, dict[str, Any]], locations: list, samples: int = 4) -> Path:
    """Write report.md, report.png and samples.png into ``out``; returns the Markdown path."""
    import json

    out = Path(out)
    seeds, cands, clean, align, export = (
        summaries.get(s, {}) for s in ("seeds", "candidates", "clean", "align", "export")
    )
    decisions_path = out / "_work" / "clean.json"
    decisions = json.loads(decisions_path.read_text()) if decisions_path.exists() else {}
    rejected = [{"item": k, "reason": v["reason"]} for k, v in decisions.items() if not v["kept"]]
    lines = ["# Dataset build report", "", "## Counts per stage", "", "| stage | count |", "|---|---|"]
    rows = [
        ("orthomosaics", seeds.get("orthomosaics", 0)),
        ("orthomosaics skipped", len(seeds.get("orthomosaics_skipped", []))),
        ("sliding windows", seeds.get("windows", 0)),
        ("windows rejected (nodata)", seeds.get("windows_rejected_nodata", 0)),
        ("1 seeds", seeds.get("seeds", 0)),
        ("panoramas found", cands.get("panoramas_found", 0)),
        ("panoramas outside footprints", cands.get("panoramas_outside_footprints", 0)),
        ("2 panoramas kept", cands.get("panoramas_kept", 0)),
        ("2 crops made", cands.get("crops_made", 0)),
        ("crops skipped", len(cands.get("crops_skipped", []))),
        ("3 failed a quality gate", clean.get("failed_any_gate", 0)),
        ("3 duplicates removed", clean.get("duplicates", 0)),
        ("3 crops kept", clean.get("kept", 0)),
        ("4 aligned (satellite + street + text)", align.get("aligned", 0)),
        ("4 skipped", len(align.get("skipped", []))),
        ("exported locations", export.get("locations", 0)),
    ]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "## Quality gates (crops failing each gate)", "", "| gate | failed |", "|---|---|"]
    lines += [f"| {g} | {n} |" for g, n in clean.get("gate_failures", {}).items()]
    scales = sorted(
        {*cands.get("crops_per_scale", {}), *clean.get("kept_per_scale", {}), *export.get("per_scale", {})},
        key=float,
    )
    lines += [
        "",
        "## Per crop scale",
        "",
        "| scale (m) | crops made | kept after stage 3 | exported |",
        "|---|---|---|---|",
    ]
    for s in scales:
        lines.append(
            f"| {s} | {cands.get('crops_per_scale', {}).get(s, 0)} | {clean.get('kept_per_scale', {}).get(s, 0)} | "
            f"{export.get('per_scale', {}).get(s, 0)} |"
        )
    lines += ["", "## Splits", "", "| split | locations |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(export.get("per_split", {}).items())]
    lines += ["", "## Text", "", "| source | locations |", "|---|---|"]
    lines += [f"| {k or 'none'} | {v} |" for k, v in align.get("text_sources", {}).items()]
    for note, n in align.get("text_notes", {}).items():
        lines.append(f"\nNote ({n} locations): {note}")
    all_skips = (
        seeds.get("orthomosaics_skipped", [])
        + cands.get("searches_failed", [])
        + cands.get("panoramas_outside", [])
        + cands.get("crops_skipped", [])
        + rejected
        + align.get("skipped", [])
    )
    lines += ["", "## Skipped, by kind", "", "| kind | count |", "|---|---|"]
    lines += [
        f"| {k} | {n} |" for k, n in Counter(_reason_kind(s["reason"]) for s in all_skips).most_common()
    ]
    lines += ["", "## Skipped items and their reasons", ""]
    lines += _skip_table("orthomosaics", seeds.get("orthomosaics_skipped", []))
    lines += _skip_table("panorama searches", cands.get("searches_failed", []))
    rows_skipped = cands.get("catalogue_rows_skipped", [])
    if rows_skipped:
        lines += (
            [f"### catalogue rows ({len(rows_skipped)})", ""]
            + [f"- {r}" for r in rows_skipped[:MAX_LISTED]]
            + [""]
        )
    lines += _skip_table("panoramas outside the footprints", cands.get("panoramas_outside", []))
    lines += _skip_table("crops (stage 2)", cands.get("crops_skipped", []))
    lines += _skip_table("crops rejected in stage 3", rejected)
    lines += _skip_table("locations (stage 4)", align.get("skipped", []))
    lines += [
        "## Kept locations",
        "",
        "![map of kept locations](report.png)",
        "",
        "## Sample triples",
        "",
        "![sample triples](samples.png)",
        "",
    ]
    _plot_map(out / "report.png", locations)
    _plot_samples(out / "samples.png", locations[:samples])
    return atomic_write_text(out / "report.md", "\n".join(lines))


def _plot_map(path: Path, locations: list, size: int = 640, margin: int = 40) -> None:
    """Kept locations as dots on a north-up lat/lon frame (equal metres per pixel), by split."""
    from PIL import Image, ImageDraw

    from geobridge.geo import metres_per_degree

    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    colours = {"train": (31, 119, 180), "val": (255, 127, 14), "test": (214, 39, 40)}
    draw.text((margin, 10), f"kept locations: {len(locations)}", fill="black")
    if locations:
        lats = [loc.lat for loc in locations]
        lons = [loc.lon for loc in locations]
        per_lat, per_lon = metres_per_degree(sum(lats) / len(lats))
        span_m = max((max(lats) - min(lats)) * per_lat, (max(lons) - min(lons)) * per_lon, 1.0)
        scale = (size - 2 * margin) / span_m
        for loc in locations:
            x = margin + (loc.lon - min(lons)) * per_lon * scale
            y = size - margin - (loc.lat - min(lats)) * per_lat * scale
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colours.get(loc.split, (0, 0, 0)))
        draw.line((margin, size - 15, margin + 100 * scale, size - 15), fill="black", width=2)
        draw.text((margin + 100 * scale + 6, size - 22), "100 m", fill="black")
        for i, (split, colour) in enumerate(colours.items()):
            n = sum(loc.split == split for loc in locations)
            draw.rectangle((size - 130, 12 + 16 * i, size - 122, 20 + 16 * i), fill=colour)
            draw.text((size - 116, 10 + 16 * i), f"{split} ({n})", fill="black")
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def _plot_samples(path: Path, locations: list, tile: int = 192) -> None:
    """One row per sample: drone crop, street panorama, satellite image, and the wrapped text."""
    import textwrap

    from PIL import Image, ImageDraw

    rows = max(1, len(locations))
    width = tile * 4 + tile + 5 * 8
    canvas = Image.new("RGB", (width, rows * (tile + 24) + 8), "white")
    draw = ImageDraw.Draw(canvas)
    if not locations:
        draw.text((8, 8), "no kept locations", fill="black")
    for r, loc in enumerate(locations):
        y = 8 + r * (tile + 24)
        x = 8
        for view, w in (("drone", tile), ("street", 2 * tile), ("satellite", tile)):
            p = loc.path(view)
            draw.text((x, y), view if view != "drone" else f"drone {loc.id}", fill="black")
            if p is not None and Path(p).exists():
                try:
                    image = open_image(p, max_side=2 * w).resize((w, tile))
                    canvas.paste(image, (x, y + 14))
                except ImageError as err:
                    draw.text((x, y + 28), f"unreadable: {err.code}", fill="red")
            x += w + 8
        text = "\n".join(textwrap.wrap(loc.text or "(no text)", 34)[:14])
        draw.multiline_text((x, y + 14), text, fill="black", spacing=2)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
