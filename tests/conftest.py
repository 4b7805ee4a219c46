"""Shared test fixtures.

``tiny_world_dir``: a small world dataset rendered once per test session (36 locations, 64 px,
all four views, a 700 m procedural city with 4 regions); returns the path of its
``manifest.parquet``. The layout is the one documented in :mod:`geobridge.world.dataset`:
``<dir>/{train,val,test}/{drone,street,satellite,map}/<id>.png``, ``<dir>/{split}/text.csv``,
``<dir>/manifest.parquet``, ``<dir>/world.json``. Treat it as read-only; copy it if a test
needs to change it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_WORLD = {"locations": 36, "seed": 0, "size": 64, "world_size_m": 700.0, "regions": 4}


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory) -> Path:
    """Manifest path of a small rendered world dataset shared by the whole session."""
    from geobridge.world.dataset import generate_world_dataset

    out = tmp_path_factory.mktemp("tiny_world") / "world"
    return generate_world_dataset(out, progress=False, **TINY_WORLD)
