"""The shipped recipes (``*.yaml`` beside this file), found by name from an installed package.

``configs/`` at the repository root points here, so ``configs/demo.yaml`` and ``--config demo``
name the same file, in a source checkout or from a wheel.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the shipped recipes (file stems), sorted."""
    return sorted(path.stem for path in HERE.glob("*.yaml"))


def resolve_config(name_or_path: str | Path) -> Path:
    """An existing file path as given, else the shipped recipe of that name (``demo`` or
    ``demo.yaml``); raises ``FileNotFoundError`` naming the shipped recipes otherwise. A folder
    is never a config: ``demo`` names the recipe even where ``make demo`` left a ``demo/`` folder."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = HERE / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.exists():
        return shipped
    raise FileNotFoundError(
        f"config not found: {name_or_path}; give a YAML path or a shipped recipe: {', '.join(available())}"
    )
