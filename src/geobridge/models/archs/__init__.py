"""Architecture configs of the hub models the presets name, shipped as package data.

``model.init=random`` builds a tower from its architecture alone; for a Hugging Face id that
architecture would otherwise be fetched from the hub (its ``config.json``). Each JSON file here
holds one model's public sizes (widths, depths, heads, patch, image size, vocabulary), keyed by
its hub id in ``source``; no weights.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def _bundled() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            out[str(data["source"])] = data
    return out


def bundled_arch(source: str) -> dict[str, Any] | None:
    """The shipped architecture config of hub id ``source`` (a fresh copy), or None."""
    found = _bundled().get(source)
    return json.loads(json.dumps(found)) if found is not None else None


def bundled_sources() -> list[str]:
    """Hub ids whose architecture ships with the package."""
    return sorted(_bundled())
