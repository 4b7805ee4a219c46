"""Every script in ``benchmarks/`` runs in its smoke mode, so an API change breaks a test instead
of a script nobody runs (issue #16: planet_ablation had rotted on a private transformers helper).

A script is any ``benchmarks/*.py`` with a ``__main__`` guard (a helper module imported by the
scripts has none); each must accept ``--smoke`` (seconds, tiny sizes) and leave its committed
table untouched. A new script without ``--smoke`` fails here. Each runs in its own process
(scripts set threads and environment variables, and some spawn processes of their own), from a
temporary working directory that is also its ``TMPDIR``; two run at a time, one per core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: Per-script wall limit; the machine is shared, so this is several times a quiet run.
TIMEOUT_S = 240


def benchmark_scripts() -> list[Path]:
    """The runnable scripts of benchmarks/: .py files with a ``__main__`` guard, by name."""
    return sorted(
        p
        for p in BENCHMARKS.glob("*.py")
        if not p.name.startswith("_") and '__name__ == "__main__"' in p.read_text(encoding="utf-8")
    )


def has_smoke(script: Path) -> bool:
    """Whether the script declares ``--smoke``, itself or through ``_study.add_study_arguments``
    (the smoke run then proves the flag is real: argparse refuses an unknown one)."""
    text = script.read_text(encoding="utf-8")
    return "--smoke" in text or "add_study_arguments(" in text


def _table(script: Path) -> bytes | None:
    """The script's committed table (benchmarks/NAME.md), or None when it has none."""
    table = script.with_suffix(".md")
    return table.read_bytes() if table.exists() else None


def _run(script: Path, folder: Path) -> subprocess.CompletedProcess | str:
    """``script --smoke`` in ``folder``; the completed process, or a message when it timed out."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TMPDIR": str(folder),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        return subprocess.run(
            [sys.executable, str(script), "--smoke"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        return f"{script.name} --smoke ran past {TIMEOUT_S} s:\n{out[-2000:]}"


@pytest.fixture(scope="module")
def smoke_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[bytes | None, Future]]]:
    """The selected scripts with --smoke, started at once on a pool of two: name -> (table before, run)."""
    root = tmp_path_factory.mktemp("smoke")
    selected = {
        item.callspec.params["script"]
        for item in request.session.items
        if hasattr(item, "callspec") and "script" in item.callspec.params
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            p.name: (_table(p), pool.submit(_run, p, root / p.stem)) for p in sorted(selected) if has_smoke(p)
        }


def test_scripts_are_discovered() -> None:
    names = {p.name for p in benchmark_scripts()}
    assert {"planet_ablation.py", "anchor_study.py", "world_render.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", benchmark_scripts(), ids=lambda p: p.stem)
def test_smoke_mode_runs(script: Path, smoke_runs: dict[str, tuple[bytes | None, Future]]) -> None:
    if not has_smoke(script):
        pytest.fail(
            f"benchmarks/{script.name} has no --smoke mode: add one (seconds, tiny sizes, no committed table written)"
        )
    before, future = smoke_runs[script.name]
    run = future.result()
    if isinstance(run, str):
        pytest.fail(run)
    assert run.returncode == 0, f"{script.name} --smoke failed (exit {run.returncode}):\n{run.stderr[-4000:]}"
    assert _table(script) == before, f"{script.name} --smoke rewrote its committed table"
