"""PLANET through the trainer: the ``physical:`` config section, logged loss terms, the physical
head trained, checkpointed beside the model and restored for an exact resume.

A 32 px tiny-cnn satellite tower and a one-layer tiny text tower on 24 synthetic locations keep
every run to a few seconds on a shared 2-core machine.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geobridge.losses.planet import PlanetConfig
from geobridge.models.physical import PhysicalHead
from geobridge.records import Location, write_manifest
from geobridge.train import ConfigError, TrainConfig, train
from geobridge.train.engine import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PHYSICAL = (
    "physical.dim=16",
    "physical.attention_dim=16",
    "physical.heads=2",
    "physical.hidden=32",
    "physical.lambda_phy=0.5",
)


@pytest.mark.parametrize(
    "path", sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "build-world.yaml"), ids=lambda p: p.name
)
def test_every_training_config_loads(path):
    config = TrainConfig.load(path)
    assert config.view_list  # a real, typed config came back
    if path.name == "planet.yaml":
        assert isinstance(config.physical, PlanetConfig) and config.physical.lambda_phy == pytest.approx(0.1)
        assert config.data.views == ["satellite", "text"]


def test_physical_section_takes_overrides_and_rejects_unknown_keys():
    config = TrainConfig.load(CONFIGS / "planet.yaml", ["physical.lambda_phy=0.3", "physical.color_bins=8"])
    assert config.physical.lambda_phy == pytest.approx(0.3) and config.physical.color_bins == 8
    assert TrainConfig.load(None).physical is None
    assert TrainConfig.load(CONFIGS / "planet.yaml", ["physical=null"]).physical is None
    with pytest.raises(ConfigError, match="physical.lambda_phyy"):
        TrainConfig.load(None, ["physical.lambda_phyy=0.3"])
    with pytest.raises(ConfigError, match="physical.bins"):
        TrainConfig.from_dict({"physical": {"bins": 4}})
    with pytest.raises(ConfigError, match="physical.lambda_phy"):
        TrainConfig.load(None, ["physical.lambda_phy=-1"])


def _model_file(tmp_path: Path) -> Path:
    config = {
        "name": "test-planet",
        "embed_dim": 32,
        "towers": {
            "satellite": {"backend": "tiny-cnn", "image_size": 32, "options": {"widths": [8, 16]}},
            "text": {
                "backend": "tiny-text",
                "max_length": 32,
                "options": {"width": 32, "depth": 1, "heads": 2, "vocab_size": 512},
            },
        },
        "image_towers": {"satellite": "satellite"},
        "text_tower": "text",
    }
    path = tmp_path / "planet-model.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """24 satellite tiles (a base colour + noise; half striped) with a text naming both."""
    root = tmp_path_factory.mktemp("planet")
    rng = np.random.default_rng(0)
    locations = []
    for i in range(24):
        base = rng.integers(0, 256, 3)
        pixels = base + rng.normal(0, 20, (32, 32, 3))
        striped = i % 2 == 0
        if striped:
            pixels[:, ::4] *= 0.3
        path = root / "train" / "satellite" / f"loc{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
        text = f"{'red' if base[0] > 128 else 'dark'} {'striped' if striped else 'plain'} {'green' if base[1] > 128 else 'grey'} area"
        locations.append(
            Location(
                id=f"loc{i}",
                lat=60.0 + i * 1e-3,
                lon=24.9,
                split="train",
                text=text,
                paths={"satellite": path},
            )
        )
    return write_manifest(locations, root / "manifest.parquet")


def _config(tmp_path: Path, manifest: Path, out: str, *extra: str) -> TrainConfig:
    return TrainConfig.load(
        CONFIGS / "planet.yaml",
        [
            f"model.preset={_model_file(tmp_path)}",
            "model.freeze_views={}",
            f"data.manifest={manifest}",
            "data.batch_size=8",
            "optim.epochs=2",
            "optim.lr=3e-3",
            "optim.warmup_steps=1",
            f"output_dir={tmp_path / out}",
            "progress=false",
            "tensorboard=false",
            "log_every=1",
            *PHYSICAL,
            *extra,
        ],
    )


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_planet_run_logs_every_term_and_trains_the_head(tmp_path, manifest):
    trainer = Trainer(_config(tmp_path, manifest, "run"))
    assert trainer.physical_head is not None
    head_ids = {id(p) for p in trainer.physical_head.parameters()}
    assert head_ids <= {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    before = _state(trainer.physical_head)
    result = trainer.fit()
    assert result.step == 6 and all(np.isfinite(result.losses))

    with (tmp_path / "run" / "logs" / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows:
        itc, color, struc, tex = (float(row[k]) for k in ("itc", "color", "struc", "tex"))
        assert min(itc, color, struc, tex) > 0
        # total = L_itc + lambda * (L_color + L_struc + L_tex), lambda = 0.5 (PHYSICAL above)
        assert float(row["loss"]) == pytest.approx(itc + 0.5 * (color + struc + tex), rel=1e-4)

    after = _state(result.physical_head)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "text.queries" in changed and any(k.startswith("signatures.") for k in changed)

    # the checkpoint holds the head beside the model; it loads on its own and equals the trained one
    saved = PhysicalHead.from_pretrained(tmp_path / "run" / "checkpoints" / "last" / "physical_head")
    assert all(torch.equal(saved.state_dict()[k], after[k]) for k in after)
    assert (tmp_path / "run" / "checkpoints" / "last" / "model").is_dir()


def test_planet_resume_after_kill_is_bit_identical(tmp_path, manifest):
    whole = train(_config(tmp_path, manifest, "whole"))
    killed = train(_config(tmp_path, manifest, "killed", "stop_at_step=4"))
    assert killed.step == 4 and killed.stopped_early
    resumed = train(_config(tmp_path, manifest, "killed"))
    assert resumed.resumed_from_step == 4 and resumed.step == 6
    for a, b in ((whole.model, resumed.model), (whole.physical_head, resumed.physical_head)):
        sa, sb = _state(a), _state(b)
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), "resumed weights differ from the uninterrupted run"
    assert resumed.losses == whole.losses[4:]


def test_planet_checkpoint_without_head_refuses_to_resume(tmp_path, manifest):
    train(_config(tmp_path, manifest, "lost", "stop_at_step=2"))
    head_dir = tmp_path / "lost" / "checkpoints" / "last" / "physical_head"
    for file in head_dir.iterdir():
        file.unlink()
    with pytest.raises(FileNotFoundError, match="physical_head"):
        train(_config(tmp_path, manifest, "lost"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (("data.views=[drone, satellite, text]",), "data.views"),
        (("optim.grad_cache_micro_batch=4",), "grad_cache_micro_batch"),
    ],
)
def test_planet_refuses_options_it_cannot_honour(tmp_path, manifest, extra, message):
    config = _config(tmp_path, manifest, "bad", *extra)
    if "drone" in config.data.views:  # give the model a drone tower so the view check is PLANET's
        config = config.model_copy(update={"model": config.model.model_copy(update={"preset": "tiny"})})
    with pytest.raises(ConfigError, match=message):
        Trainer(config)
