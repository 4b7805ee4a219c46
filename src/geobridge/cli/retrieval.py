"""Commands of the `retrieval` job (filled in by its room)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this job's commands to the `geobridge` app."""
