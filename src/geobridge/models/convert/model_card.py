"""The short README.md a converted model directory carries: where the weights came from, their
licence as their authors state it, the architecture, the eval transform and published numbers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geobridge.models.config import ModelConfig
from geobridge.models.convert.common import Provenance

_METRICS = ("R@1", "R@5", "R@10", "R@1%", "AP")


def render_readme(
    config: ModelConfig, provenance: Provenance, published: Iterable[dict[str, Any]] = ()
) -> str:
    """Markdown for README.md; `published` are rows of the published-numbers table (plain dicts)."""
    lines = [
        f"# {config.name}",
        "",
        f"Converted by `geobridge convert {provenance.format}` from `{provenance.checkpoint}`",
        f"(sha256 `{provenance.sha256}`).",
        "",
        f"- Source: {provenance.source_url}",
        f"- Licence (as stated by its authors): {provenance.licence}",
        f"- Architecture: {provenance.architecture}",
        f"- Embedding width: {config.embed_dim}; views: {', '.join(v.value for v in config.image_towers)}"
        + ("; text" if config.text_tower else "; no text tower"),
        "",
        "## Eval transform (per view, as the authors' test code)",
        "",
    ]
    lines += [f"- {view.value}: {spec.describe()}" for view, spec in config.eval_transforms.items()]
    if provenance.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in provenance.notes]
    if provenance.dropped:
        lines += ["", "## Tensors not converted", ""]
        lines += [f"- {count} x {reason}" for reason, count in sorted(provenance.dropped.items())]
    rows = list(published)
    lines += ["", "## Published numbers", ""]
    if not rows:
        lines.append("None recorded for this checkpoint (see `geobridge evaluate --published`).")
    else:
        lines += [
            "| benchmark | setting | direction | " + " | ".join(_METRICS) + " | protocol | source |",
            "|---" * (len(_METRICS) + 5) + "|",
        ]
        for row in rows:
            cells = [row.get(m) or "" for m in _METRICS]
            lines.append(
                f"| {row['benchmark']} | {row.get('setting') or ''} | {row['direction']} | "
                + " | ".join(str(c) for c in cells)
                + f" | {row.get('protocol') or ''} | {row.get('source') or ''} |"
            )
    return "\n".join(lines) + "\n"
