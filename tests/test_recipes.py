"""docs/recipes.md and the shipped recipes agree: the table is parsed and every row compared with
the recipe's resolved training config and model preset, so neither can drift from the other."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from geobridge.configs import available, resolve_config
from geobridge.models.config import ModelConfig
from geobridge.models.factory import resolve_config as resolve_model
from geobridge.train.config import TrainConfig
from geobridge.views import View

TABLE = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
NOT_TRAINING = {"build-world"}  # a dataset-build config, not a TrainConfig
# recipes naming a benchmark leave its root to the user; these stand in for the user's folders
ROOTS = {
    "gleam-c": [
        "data.sources.0.root=VIGOR",
        "data.sources.1.root=U1652",
        "phases.0.data.sources.0.root=VIGOR",
    ],
}


def table_rows() -> dict[str, dict[str, str]]:
    """The recipes table of docs/recipes.md: recipe name -> {column header: cell}."""
    lines = [line.strip() for line in TABLE.read_text(encoding="utf-8").splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("| Recipe |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(header), f"row {cells[0]} has {len(cells)} cells, the header {len(header)}"
        rows[cells[0].strip("`")] = dict(zip(header, cells))
    return rows


def load_recipe(name: str) -> TrainConfig:
    """The shipped recipe, with stand-in roots for the benchmarks it names."""
    path = resolve_config(name)
    names_dataset = bool(yaml.safe_load(path.read_text(encoding="utf-8")).get("data", {}).get("dataset"))
    return TrainConfig.load(path, ROOTS.get(name) or (["data.root=/data/ROOT"] if names_dataset else []))


def model_config(config: TrainConfig) -> ModelConfig:
    """The recipe's model config as create_model builds it: the preset plus model.overrides."""
    preset = resolve_model(config.model.preset)
    return ModelConfig.model_validate({**preset.model_dump(), **config.model.overrides})


def image_views(config: TrainConfig) -> list[View]:
    return [v for v in config.view_list if v.is_image]


def trainable(config: TrainConfig) -> str:
    def blocks(n: int) -> str:
        return f"last {n} block" + ("" if n == 1 else "s")

    if config.model.freeze_all_but_last is not None:
        return blocks(config.model.freeze_all_but_last)
    if config.model.freeze_views:
        return ", ".join(f"{view}: {blocks(n)}" for view, n in config.model.freeze_views.items())
    return "all"


def test_every_training_recipe_has_a_row_and_every_row_a_recipe():
    shipped = set(available()) - NOT_TRAINING
    assert shipped == set(table_rows())


def test_recipes_naming_a_benchmark_load_once_its_root_is_given():
    for name in (
        "sample4geo-u1652",
        "sample4geo-vigor",
        "sample4geo-cvusa",
        "sample4geo-cvact",
        "geobridge-u1652-finetune",
    ):
        config = TrainConfig.load(resolve_config(name), ["data.root=/data/ROOT"])
        assert config.data.dataset and config.data.root == "/data/ROOT"
    vigor = TrainConfig.load(resolve_config("sample4geo-vigor"), ["data.root=R"])
    assert vigor.data.option == {"mode": "same"}
    phases = TrainConfig.load(resolve_config("gleam-c"), ROOTS["gleam-c"]).phase_configs()
    datasets = [[s.dataset for s in p.data.source_sections()] for p in phases]
    assert datasets == [["vigor"], ["vigor", "university1652"]]


@pytest.mark.parametrize("name", sorted(table_rows()))
def test_row_matches_the_shipped_recipe(name: str):
    row = table_rows()[name]
    config = load_recipe(name)
    model = model_config(config)
    views = image_views(config)

    tag = re.search(r"`([^`]+)`", row["Backbone (weights)"])
    assert tag, f"{name}: the backbone cell names no `tag`"
    towers = [model.towers[model.image_towers[v]] for v in views]
    sources = {tower.source or tower.backend for tower in towers}
    assert sources == {tag.group(1)}, f"{name}: backbone"

    sizes = dict(item.strip().split(" ") for item in row["Image sizes (H x W)"].split(","))
    shipped = {v.value: "x".join(map(str, model.image_size(v))) for v in views}
    assert sizes == shipped, f"{name}: image sizes"

    assert int(row["Batch"]) == config.data.batch_size
    assert row["Optimizer"].lower() == config.optim.name
    assert float(row["LR"]) == pytest.approx(config.optim.lr)
    epochs = [int(e) for e in row["Epochs"].split("+")]
    assert epochs == [p.optim.epochs for p in config.phase_configs()], f"{name}: epochs"
    smoothing = float(config.loss.options.get("label_smoothing", 0.0))
    assert float(row["Label smoothing"]) == pytest.approx(smoothing)
    temperature = re.fullmatch(r"log\(1/([0-9.]+)\)", row["Logit scale init"])
    assert temperature and model.logit_scale_init == pytest.approx(math.log(1 / float(temperature.group(1))))
    assert row["Trainable"] == trainable(config), f"{name}: freezing"
    assert row["Source"], f"{name}: say where the values come from"


def test_sample4geo_recipes_use_the_384px_weights_and_their_panorama_sizes():
    sizes = {"sample4geo-vigor": (384, 768), "sample4geo-cvusa": (140, 768), "sample4geo-cvact": (140, 768)}
    for name, street in sizes.items():
        config = load_recipe(name)
        model = model_config(config)
        assert model.towers["shared"].source == "convnext_base.fb_in22k_ft_in1k_384"
        assert model.image_size("street") == street and model.image_size("satellite") == (384, 384)
        assert config.optim.epochs == 40


@pytest.mark.parametrize("name", sorted(set(available()) - NOT_TRAINING))
def test_every_recipe_loads_as_shipped_with_its_roots_left_to_the_user(name: str):
    config = TrainConfig.load(resolve_config(name))
    assert all(not s.root for s in config.data.source_sections() if s.dataset)
