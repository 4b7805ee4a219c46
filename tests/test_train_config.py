"""TrainConfig: YAML + dotted overrides; every wrong key is an error that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from geobridge.train.config import ConfigError, TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim: {lr: 0.01, epochs: 3}\ndata: {views: [D, satellite]}\n")
    config = TrainConfig.load(path, ["optim.lr=1e-4", "data.batch_size=16", "model.overrides.embed_dim=64"])
    assert config.optim.lr == pytest.approx(1e-4)  # override wins over the file; "1e-4" is a float
    assert config.optim.epochs == 3
    assert config.data.batch_size == 16
    assert config.data.views == ["drone", "satellite"]  # letters parsed to view names
    assert config.model.overrides == {"embed_dim": 64}  # free-form dict accepts any key


@pytest.mark.parametrize(
    "override, named",
    [
        ("optim.lrr=1e-4", "optim.lrr"),
        ("optimiser.lr=1", "optimiser.lr"),
        ("bacth_size=3", "bacth_size"),
        ("optim.lr.x=1", "optim.lr"),
    ],
)
def test_unknown_override_key_is_named(override, named):
    with pytest.raises(ConfigError, match=f"'{named}'"):
        TrainConfig.load(None, [override])


def test_unknown_yaml_key_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  batch_size: 8\n  shuffel: true\n")
    with pytest.raises(ConfigError, match="data.shuffel"):
        TrainConfig.load(path)


def test_bad_value_names_key_and_value():
    with pytest.raises(ConfigError, match="optim.lr.*abc"):
        TrainConfig.load(None, ["optim.lr=abc"])
    with pytest.raises(ConfigError, match="data.views"):
        TrainConfig.load(None, ["data.views=[drone, helicopter]"])
    with pytest.raises(ConfigError, match="expected key=value"):
        TrainConfig.load(None, ["optim.lr"])


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["demo", "geobridge-clip-l14", "sample4geo-convnext", "gleam-c"])
def test_shipped_presets_load(name):
    # gleam-c names its datasets; their roots are the user's (tests/test_recipes.py loads them all)
    roots = ["data.sources.0.root=V", "data.sources.1.root=U", "phases.0.data.sources.0.root=V"]
    config = TrainConfig.load(CONFIGS / f"{name}.yaml", roots if name == "gleam-c" else [])
    assert config.model.preset
    assert config.optim.lr > 0


def test_paper_hyper_parameters():
    geobridge = TrainConfig.load(CONFIGS / "geobridge-clip-l14.yaml")
    assert (geobridge.optim.name, geobridge.optim.lr, geobridge.optim.epochs, geobridge.data.batch_size) == (
        "adam",
        1e-5,
        200,
        32,
    )
    assert geobridge.loss.edge_set == "geobridge"
    s4g = TrainConfig.load(CONFIGS / "sample4geo-convnext.yaml")
    assert (s4g.optim.name, s4g.optim.lr, s4g.data.batch_size, s4g.optim.grad_clip_value) == (
        "adamw",
        1e-3,
        128,
        100,
    )
    assert s4g.loss.options["label_smoothing"] == pytest.approx(0.1)
    assert s4g.optim.warmup_steps > 0 and s4g.optim.amp == "auto"


def test_cli_reports_wrong_key_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from geobridge.cli import app

    result = CliRunner().invoke(app, ["train", "optim.lrr=1e-4"])
    assert result.exit_code == 2
    assert "error: unknown config key 'optim.lrr'" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["train", f"data.manifest={tmp_path / 'none.parquet'}"])
    assert result.exit_code == 2 and "manifest not found" in result.output


def test_similarity_mining_options_are_checked():
    config = TrainConfig.load(None, ["data.views=[street, satellite, text]", "data.sim_neighbours=4"])
    assert config.data.similarity_views == ["street", "satellite"]  # the first two image views
    with pytest.raises(ConfigError, match="sim_pool"):
        TrainConfig.load(None, ["data.sim_neighbours=8", "data.sim_pool=4"])
    with pytest.raises(ConfigError, match="sim_views map not in data.views"):
        TrainConfig.load(None, ["data.sim_neighbours=2", "data.sim_views=[drone, map]"])
    with pytest.raises(ConfigError, match="two different views"):
        TrainConfig.load(None, ["data.sim_views=[drone, drone]"])
    with pytest.raises(ConfigError, match="data.sim_neighbors"):
        TrainConfig.load(None, ["data.sim_neighbors=2"])
    s4g = TrainConfig.load(CONFIGS / "sample4geo-convnext.yaml")
    assert s4g.data.sim_neighbours > 0 and s4g.data.similarity_views == ["drone", "satellite"]
