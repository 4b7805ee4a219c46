"""A contact sheet: a PNG showing a few locations of a dataset, one row each, with every image
view side by side and the location's text, for a person to check that the views and the text
agree."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from geobridge.atomic import atomic_path
from geobridge.images import open_image
from geobridge.records import read_manifest

SHEET_VIEWS: tuple[str, ...] = ("satellite", "drone", "street", "map")
SHEET_MAX_SIDE = 512  # a sheet cell is ~2 inches: larger images are read reduced


def pick_sheet_locations(locations: list, count: int) -> list:
    """Up to ``count`` locations spread over splits and regions (deterministic: manifest order)."""
    by_region: dict[str, list] = {}
    for loc in locations:
        by_region.setdefault(f"{loc.split}/{loc.region}", []).append(loc)
    # one group per split first (so every split shows), then the remaining regions
    keys = sorted(by_region)
    firsts = [
        next(k for k in keys if k.startswith(split + "/"))
        for split in ("train", "val", "test")
        if any(k.startswith(split + "/") for k in keys)
    ]
    groups = [by_region[k] for k in firsts + [k for k in keys if k not in firsts]]
    picked: list = []
    depth = 0
    while len(picked) < count and any(depth < len(g) for g in groups):
        for g in groups:
            if depth < len(g) and len(picked) < count:
                picked.append(g[depth])
        depth += 1
    return picked


def make_contact_sheet(
    manifest: str | os.PathLike[str],
    out_png: str | os.PathLike,
    count: int = 6,
    title: str | None = None,
    views: tuple[str, ...] = SHEET_VIEWS,
) -> Path:
    """Draw ``count`` locations of ``manifest`` (their image views and text) into ``out_png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    locations = read_manifest(manifest)
    if not locations:
        raise ValueError(f"manifest {manifest} holds no locations")
    chosen = pick_sheet_locations(locations, count)
    present = [v for v in views if any(loc.path(v) is not None for loc in chosen)]
    ratios = [2.0 if v == "street" else 1.0 for v in present] + [2.6]
    fig_w = 2.1 * sum(ratios)
    fig, axes = plt.subplots(
        len(chosen),
        len(present) + 1,
        figsize=(fig_w, 2.25 * len(chosen) + 0.6),
        gridspec_kw={"width_ratios": ratios},
        squeeze=False,
    )
    for i, loc in enumerate(chosen):
        for j, view in enumerate(present):
            ax = axes[i][j]
            path = loc.path(view)
            if path is not None and Path(path).exists():
                ax.imshow(np.asarray(open_image(path, max_side=SHEET_MAX_SIDE)))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(view, fontsize=10)
            if j == 0:
                ax.set_ylabel(
                    f"{loc.id}\n{loc.split} / {loc.region}\n{loc.lat:.5f}, {loc.lon:.5f}", fontsize=7
                )
        tax = axes[i][-1]
        tax.axis("off")
        tax.text(
            0.0,
            1.0,
            "\n".join(textwrap.wrap(loc.text, 58)),
            va="top",
            ha="left",
            fontsize=6.3,
            family="DejaVu Sans",
            transform=tax.transAxes,
        )
        if i == 0:
            tax.set_title("text", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    return out_png
