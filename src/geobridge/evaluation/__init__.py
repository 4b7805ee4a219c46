"""Evaluation with the benchmarks' exact protocols: metrics (pure functions), streaming ranks,
named protocols and reports (JSON, Markdown, recall curves, HTML examples).

Heavy parts (torch) load on first use of :func:`evaluate`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvaluationResult", "evaluate", "list_protocols"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from geobridge.evaluation import protocols

        return getattr(protocols, name)
    raise AttributeError(f"module 'geobridge.evaluation' has no attribute {name!r}")
