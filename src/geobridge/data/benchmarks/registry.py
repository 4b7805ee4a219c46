"""The benchmark registry: loaders register under a name, :func:`load_benchmark` opens one."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from geobridge.data.benchmarks.base import Benchmark

_REGISTRY: dict[str, type[Benchmark]] = {}


def register_benchmark(cls: type[Benchmark]) -> type[Benchmark]:
    """Class decorator: make a loader available to :func:`load_benchmark` under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(
            f"benchmark name {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}"
        )
    _REGISTRY[cls.name] = cls
    return cls


def list_benchmarks() -> list[str]:
    """Registered benchmark names."""
    return sorted(_REGISTRY)


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "")


def benchmark_class(name: str) -> type[Benchmark]:
    """The loader class registered under ``name`` (case, ``-`` and ``_`` insensitive)."""
    for registered, cls in _REGISTRY.items():
        if _normalise(registered) == _normalise(name):
            return cls
    raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(list_benchmarks())}")


def benchmark_options(name: str) -> list[str]:
    """The keyword options the loader ``name`` accepts (besides ``root``)."""
    cls = benchmark_class(name)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root")]


def load_benchmark(name: str, root: str | Path, **options: Any) -> Benchmark:
    """Open the benchmark ``name`` stored under ``root``; ``options`` are the loader's own.

    Unknown options are an error that lists the loader's options.
    """
    cls = benchmark_class(name)
    accepted = benchmark_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{cls.name} does not take option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    return cls(root, **options)
