"""GLEAM-C's two phases in one run: the switch, the per-phase schedule, exact resume across the
boundary, modality-balanced batches, and phase keys that are checked."""

from __future__ import annotations

import collections
import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_engine import tiny_model_file, weights

from geobridge.data.samplers import ModalityBalancedBatchSampler
from geobridge.records import Location, write_manifest
from geobridge.train import TrainConfig, train
from geobridge.train.config import ConfigError
from geobridge.train.engine import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Two small sources: 16 street+satellite locations (the phase-1 set) and 16 drone+satellite
    ones; ``fused`` is their union, as GLEAM-C's second phase trains on."""
    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    street, drone = [], []
    for i in range(32):
        base = rng.integers(0, 256, 3)
        kind = "street" if i < 16 else "drone"
        paths = {}
        for view, shape in ((kind, (32, 64) if kind == "street" else (32, 32)), ("satellite", (32, 32))):
            pixels = np.clip(base + rng.normal(0, 25, shape + (3,)), 0, 255).astype(np.uint8)
            path = root / "images" / view / f"{kind}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            paths[view] = path
        loc = Location(
            id=f"{kind}{i}", lat=60.0 + i * 1e-3, lon=24.9, split="train", text=f"place {i}", paths=paths
        )
        (street if kind == "street" else drone).append(loc)
    out = {}
    for name, locations in (("street", street), ("fused", street + drone)):
        (root / name).mkdir()
        out[name] = write_manifest(locations, root / name / "manifest.parquet")
    return out


def phased_config(tmp_path: Path, sources: dict[str, Path], out: str, *extra: str) -> TrainConfig:
    """Phase 1: 2 epochs of street->satellite (2 steps each); phase 2: 1 epoch of the fused set
    with balanced modalities (4 steps), at a higher peak learning rate. 8 steps in all."""
    phases = (
        f"phases=[{{name: one-source, epochs: 2, data: {{manifest: {sources['street']}, views: [street, satellite]}}}},"
        f" {{name: fused, epochs: 1, data: {{manifest: {sources['fused']}, balance_modalities: true}},"
        f" optim: {{lr: 4.0e-3}}}}]"
    )
    return TrainConfig.load(
        None,
        [
            f"model.preset={tiny_model_file(tmp_path)}",
            "data.views=[drone, street, satellite]",
            "data.batch_size=8",
            "loss.edge_set=satellite-centric",
            "loss.options={views: [drone, street]}",
            "optim.lr=2e-3",
            "optim.warmup_steps=1",
            f"output_dir={tmp_path / out}",
            "progress=false",
            "tensorboard=false",
            "log_every=1",
            phases,
            *extra,
        ],
    )


class RecordingTrainer(Trainer):
    """Notes the location ids of every step's batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_ids: list[list[str]] = []

    def _step(self, batch):
        self.batch_ids.append(list(batch["ids"]))
        return super()._step(batch)


def test_phase_switch_happens_at_the_boundary(tmp_path, sources, caplog):
    trainer = RecordingTrainer(phased_config(tmp_path, sources, "switch"))
    assert [(p.first_step, p.steps) for p in trainer.phases] == [(0, 4), (4, 4)]
    with caplog.at_level("INFO", logger="geobridge.train.engine"):
        result = trainer.fit()
    assert "step 4: entering phase 2 (fused) of 2" in caplog.text
    assert result.step == 8 and result.epoch == 3
    ids = trainer.batch_ids
    assert all(i.startswith("street") for batch in ids[:4] for i in batch)  # phase 1: one source only
    for batch in ids[4:]:  # phase 2: the fused set, both modalities in equal shares
        counts = collections.Counter(i.rstrip("0123456789") for i in batch)
        assert counts == {"street": 4, "drone": 4}
    # one warm-up + cosine per phase: each phase's first step runs at half its own peak rate
    with open(tmp_path / "switch" / "logs" / "train.csv") as handle:
        lr = [float(row["lr"]) for row in csv.DictReader(handle)]
    assert lr[0] == pytest.approx(2e-3 / 2) and lr[4] == pytest.approx(4e-3 / 2)
    assert lr[1] == pytest.approx(2e-3) and lr[5] == pytest.approx(4e-3)
    assert lr[3] < lr[2] < lr[1] and lr[7] < lr[6] < lr[5]


def test_resume_across_the_phase_boundary_is_exact(tmp_path, sources):
    whole = train(phased_config(tmp_path, sources, "whole"))
    # killed exactly at the boundary (end of phase 1), then inside phase 2, then run to the end
    first = train(phased_config(tmp_path, sources, "killed", "stop_at_step=4"))
    second = train(phased_config(tmp_path, sources, "killed", "stop_at_step=6"))
    last = train(phased_config(tmp_path, sources, "killed"))
    assert (first.step, second.resumed_from_step, second.step, last.resumed_from_step, last.step) == (
        4,
        4,
        6,
        6,
        8,
    )
    a, b = weights(whole.model), weights(last.model)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert first.losses + second.losses + last.losses == whole.losses


def test_bad_phase_keys_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases:\n  - {epochs: 1, data: {batch_size: 4}}\n")
    with pytest.raises(ConfigError, match=r"'phases\.0\.data\.batch_size'"):
        TrainConfig.load(bad)
    bad.write_text("phases:\n  - {epochs: 1}\n  - {epochs: 2, optim: {lr: 1.0e-4, warmup_steps: 3}}\n")
    with pytest.raises(ConfigError, match=r"'phases\.1\.optim\.warmup_steps'"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="optim.epochs"):
        TrainConfig.load(None, ["optim.epochs=3", "phases=[{epochs: 1}]"])
    with pytest.raises(ConfigError, match=r"phases\[1\] \(fused\).*balance_modalities"):
        TrainConfig.load(
            None,
            [
                "data.gps_neighbours=2",
                "phases=[{epochs: 1}, {name: fused, epochs: 1, data: {balance_modalities: true}}]",
            ],
        ).phase_configs()


GLEAM_ROOTS = ["data.sources.0.root=VIGOR", "data.sources.1.root=U1652", "phases.0.data.sources.0.root=VIGOR"]


def test_gleam_c_preset_has_two_phases():
    config = TrainConfig.load(CONFIGS / "gleam-c.yaml", GLEAM_ROOTS)
    one, two = config.phase_configs()
    assert one.data.views == ["street", "satellite"] and not one.data.balance_modalities
    assert two.data.balance_modalities and set(two.data.views) >= {"drone", "street", "map", "satellite"}
    assert two.loss.edge_set == "satellite-centric"


def test_balanced_batches_give_each_modality_an_equal_share():
    keys = [f"d{i}" for i in range(30)] + [f"s{i}" for i in range(6)] + [f"m{i // 2}" for i in range(12)]
    groups = ["drone"] * 30 + ["street"] * 6 + ["map"] * 12  # the map source shows each place twice
    sampler = ModalityBalancedBatchSampler(keys, 6, groups=groups, seed=1)
    for epoch in range(3):
        batches = sampler.global_batches(epoch)
        assert len(batches) == len(keys) // 6
        for batch in batches:
            assert collections.Counter(groups[i] for i in batch) == {"drone": 2, "street": 2, "map": 2}
            assert len({keys[i] for i in batch}) == 6
    # a batch size not divisible by the groups: the extra slots rotate, totals stay within one
    totals = collections.Counter(
        groups[i] for b in ModalityBalancedBatchSampler(keys, 4, groups=groups).global_batches(0) for i in b
    )
    assert max(totals.values()) - min(totals.values()) <= 1
    assert ModalityBalancedBatchSampler(keys, 6, groups=groups, seed=1).global_batches(
        2
    ) == sampler.global_batches(2)
    with pytest.raises(ValueError, match="6 distinct locations, fewer than its share 8"):
        ModalityBalancedBatchSampler(keys, 24, groups=groups)  # 6 street (and map) places cannot fill 8 slots


def test_phase_fields_take_indexed_overrides():
    config = TrainConfig.load(
        CONFIGS / "gleam-c.yaml",
        [*GLEAM_ROOTS, "phases.0.data.sources.0.root=vigor-only", "phases.1.optim.lr=3e-6"],
    )
    one, two = config.phase_configs()
    assert [s.root for s in one.data.sources] == ["vigor-only"]
    assert [s.root for s in two.data.sources] == ["VIGOR", "U1652"]
    assert (one.optim.lr, two.optim.lr) == (config.optim.lr, pytest.approx(3e-6))
    with pytest.raises(ConfigError, match="'phases.0.data.shuffle'"):
        TrainConfig.load(CONFIGS / "gleam-c.yaml", ["phases.0.data.shuffle=true"])
    with pytest.raises(ConfigError, match="'phases.2' does not exist"):
        TrainConfig.load(CONFIGS / "gleam-c.yaml", ["phases.2.epochs=1"])
