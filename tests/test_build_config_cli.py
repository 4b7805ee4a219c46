"""Build configuration (typed, unknown keys are errors, paths relative to the YAML) and the
`geobridge build` commands' one-line errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from geobridge.builder.config import BuildConfigError, load_build_config, parse_build_config
from geobridge.cli import app

MINIMAL = {
    "out": "out",
    "orthomosaics": ["ortho.tif"],
    "panoramas": {"kind": "local", "catalogue": "panos.csv"},
    "satellite": {"kind": "xyz-dir", "path": "tiles"},
}


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_defaults_and_relative_paths(tmp_path):
    cfg = load_build_config(write_yaml(tmp_path / "b.yaml", MINIMAL))
    assert cfg.out == tmp_path / "out" and cfg.orthomosaics == [tmp_path / "ortho.tif"]
    assert cfg.panoramas.catalogue == tmp_path / "panos.csv"
    assert cfg.crop.scales_m == [80, 100, 120, 150, 180] and cfg.dedup.max_overlap == 0.5
    assert cfg.text.endpoint is None


@pytest.mark.parametrize(
    "change,message",
    [
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({"gates": {"blur_minimum": 3}}, "gates.blur_minimum: Extra inputs are not permitted"),
        ({"satellite": {"kind": "xyz-url", "url": "http://h/tiles.png"}}, "must contain {z}, {x} and {y}"),
        ({"panoramas": {"kind": "local"}}, "needs panoramas.catalogue"),
        ({"crop": {"scales_m": [80, -1]}}, "positive ground sizes"),
        ({"drone_subset": {"name_pattern": "(?P<south>.*)"}}, "lacks named group"),
    ],
)
def test_config_errors_name_the_key(change, message):
    with pytest.raises(BuildConfigError) as err:
        parse_build_config({**MINIMAL, **change})
    assert message in str(err.value)


def run_cli(*args):
    return CliRunner().invoke(app, list(args))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_build_run_reports_bad_input_in_one_line(tmp_path):
    missing = run_cli("build", "run", "--config", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "error: build config not found" in missing.output
    bad = run_cli(
        "build", "run", "--config", str(write_yaml(tmp_path / "bad.yaml", {**MINIMAL, "colour": "red"}))
    )
    assert bad.exit_code == 2 and "colour: Extra inputs are not permitted" in bad.output
    assert "Traceback" not in bad.output
    # the only orthomosaic has no geo-reference: nothing to build, said in one line, nothing written
    import rasterio

    with rasterio.open(
        tmp_path / "ortho.tif", "w", driver="GTiff", width=16, height=16, count=3, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((3, 16, 16), np.uint8))
    (tmp_path / "panos.csv").write_text("id,lat,lon,heading,path\n")
    (tmp_path / "tiles").mkdir()
    result = run_cli("build", "run", "--quiet", "--config", str(write_yaml(tmp_path / "b.yaml", MINIMAL)))
    assert result.exit_code == 2 and "no seeds" in result.output and "no geo-reference" in result.output
    assert not (tmp_path / "out" / "manifest.parquet").exists()


def test_build_products_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = run_cli("build", "products", str(tmp_path))
    assert result.exit_code == 2 and "already exists" in result.output
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_example_config_in_the_repo_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "configs" / "build-world.yaml"
    cfg = load_build_config(example)
    assert cfg.satellite.kind == "xyz-dir" and cfg.text.world is not None
    assert cfg.crop.scales_m == [80, 100, 120, 150, 180]


def test_the_shipped_config_loads_by_name_with_paths_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_build_config("build-world")
    assert cfg.orthomosaics == [tmp_path / "world-products" / "orthomosaic.tif"]
    assert cfg.out == tmp_path / "build-out"
    with pytest.raises(BuildConfigError, match="build config not found: no-such-config.*build-world"):
        load_build_config("no-such-config")
