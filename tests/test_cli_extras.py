"""Optional extras: `geobridge[serve]` and `geobridge[build]`. Without them the core imports and
runs, and the commands that need them say which extra to install (one line, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.cli.errors import EXTRAS, require_extra

ROOT = Path(__file__).resolve().parents[1]


def missing(monkeypatch, *modules: str) -> None:
    """Make ``import module`` fail as if the package were not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_require_extra_names_the_extra_and_the_missing_module(monkeypatch, capsys):
    require_extra("serve", "geobridge serve")  # installed here: no error
    missing(monkeypatch, "uvicorn")
    with pytest.raises(typer.Exit) as caught:
        require_extra("serve", "geobridge serve")
    assert caught.value.exit_code == 2
    err = capsys.readouterr().err
    assert "geobridge serve needs the optional 'serve' dependencies (uvicorn is not installed)" in err
    assert "pip install 'geobridge[serve]'" in err


@pytest.mark.parametrize(
    ("args", "module", "extra"),
    [
        (["serve", "--gallery", "no-such-gallery"], "fastapi", "serve"),
        (["build", "products", "no-such-folder"], "rasterio", "build"),
        (["build", "run", "--config", "no-such.yaml"], "rasterio", "build"),
        (["world", "no-such-folder", "--source", "osm"], "pyrosm", "build"),
    ],
)
def test_commands_without_their_extra_fail_with_one_line_naming_it(
    monkeypatch, tmp_path, args, module, extra
):
    monkeypatch.chdir(tmp_path)
    missing(monkeypatch, module)
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.output
    assert f"({module} is not installed): pip install 'geobridge[{extra}]'" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_core_cli_imports_and_runs_without_the_extras():
    blocked = sorted({m for modules in EXTRAS.values() for m in modules} | {"starlette", "multipart"})
    script = f"""
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Blocked())
import geobridge, geobridge.cli
from typer.testing import CliRunner
for args in (["--help"], ["evaluate", "--help"], ["world", "--help"], ["serve", "--help"]):
    assert CliRunner().invoke(geobridge.cli.app, args).exit_code == 0, args
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_pyproject_extras_cover_the_rooms_and_the_tests():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    for name in ("serve", "build"):
        assert extras[name] and all(dep in extras["all"] and dep in extras["test"] for dep in extras[name])
        assert not any(dep.split(">")[0] in core for dep in extras[name])  # not in the core too
