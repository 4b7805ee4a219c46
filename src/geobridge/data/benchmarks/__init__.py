"""Benchmark loaders in the datasets' released on-disk layouts, found by name (timm-style registry).

>>> bench = load_benchmark("cvusa", "/data/CVUSA")
>>> [d.name for d in bench.directions()], bench.default_protocol
(['P2S', 'S2P'], 'pairs')
>>> queries, gallery = bench.query_set("P2S"), bench.gallery_set("P2S")

Names: world, geoloc, university1652, cvusa, cvact, vigor, sues200, geotext1652. Each loader's
module docstring documents the exact layout it reads; a missing or incomplete dataset raises
:class:`DatasetNotFoundError` naming the missing file and what to do.
"""

from __future__ import annotations

# Importing the loader modules registers them.
from geobridge.data.benchmarks import (  # noqa: E402,F401  (after the registry on purpose)
    cvact,
    cvusa,
    geoloc,
    geotext1652,
    sues200,
    university1652,
    vigor,
    world,
)
from geobridge.data.benchmarks.base import Benchmark, DatasetNotFoundError, ImageSet
from geobridge.data.benchmarks.registry import (
    benchmark_class,
    benchmark_options,
    list_benchmarks,
    load_benchmark,
    register_benchmark,
)
from geobridge.data.places import TrainingPlace

__all__ = [
    "Benchmark",
    "DatasetNotFoundError",
    "ImageSet",
    "TrainingPlace",
    "benchmark_class",
    "benchmark_options",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
]
