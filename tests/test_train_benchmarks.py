"""Training on the public benchmarks in their official layouts (written by tests/official_layouts.py,
independently of the package's fixture writer): two steps with a tiny tower, a validation pass
with the benchmark's own protocol, and a resumed run equal to an uninterrupted one; the manifest
of ``geobridge data prepare``; a two-dataset GLEAM-C run; coordinates that are absent."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import official_layouts as layouts
import pytest
import torch
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.evaluation.validation import validation_fn
from geobridge.train import train
from geobridge.train.config import ConfigError, TrainConfig

TINY_TOWERS = (
    "model.overrides={embed_dim: 32, towers: {"
    "drone: {backend: tiny-cnn, image_size: 32, options: {widths: [8, 16]}},"
    "street: {backend: tiny-cnn, image_size: [16, 64], options: {widths: [8, 16]}},"
    "satellite: {backend: tiny-cnn, image_size: 32, options: {widths: [8, 16]}},"
    "map: {backend: tiny-cnn, image_size: 32, options: {widths: [8, 16]}},"
    "text: {backend: tiny-text, max_length: 32, options: {width: 32, depth: 1, heads: 2, vocab_size: 1024}}}}"
)


@dataclass
class Case:
    """A benchmark as a user trains it: its layout writer, loader options, views and loss."""

    write: Callable[[Path], Path]
    views: str
    loss: str
    option: dict[str, Any] = field(default_factory=dict)
    val_key: str = "D2S/R@1"  # a metric its validation must report
    extra: tuple[str, ...] = ()


PAIRS_DS = "loss.edge_set=pairs", "loss.options={query: drone, reference: satellite}"
PAIRS_PS = "loss.edge_set=pairs", "loss.options={query: street, reference: satellite}"
CASES: dict[str, Case] = {
    "university1652": Case(
        lambda r: layouts.write_university1652(r, n_train=3, n_test=3),
        "[drone, street, satellite]",
        "image-only",
    ),
    "university1652-s4g": Case(
        lambda r: layouts.write_university1652(r, n_train=3, n_test=3),
        "[drone, satellite]",
        "",
        option={"protocol": "u1652-s4g"},
        extra=PAIRS_DS,
    ),
    "sues200": Case(
        lambda r: layouts.write_sues200_split(r, n_places=6, n_train=4),
        "[drone, satellite]",
        "",
        option={"altitude": 200},
        extra=PAIRS_DS,
    ),
    "sues200-raw": Case(
        lambda r: layouts.write_sues200_raw(r, n_places=6),
        "[drone, satellite]",
        "",
        option={"altitude": 150, "train_places": 4},
        extra=PAIRS_DS,
    ),
    "vigor-same": Case(
        lambda r: layouts.write_vigor(r),
        "[street, satellite]",
        "",
        option={"mode": "same"},
        val_key="P2S/R@1",
        extra=PAIRS_PS,
    ),
    "vigor-cross-reorganised": Case(
        lambda r: layouts.write_vigor(r, reorganised=True),
        "[street, satellite]",
        "",
        option={"mode": "cross"},
        val_key="P2S/R@1",
        extra=PAIRS_PS,
    ),
    "cvusa": Case(
        lambda r: layouts.write_cvusa(r, n_train=6, n_val=3, with_locations=True),
        "[street, satellite]",
        "",
        val_key="P2S/R@1",
        extra=PAIRS_PS,
    ),
    "cvact": Case(
        lambda r: layouts.write_cvact(r, n_train=6, n_val=3),
        "[street, satellite]",
        "",
        val_key="P2S/R@1",
        extra=PAIRS_PS,
    ),
    "geotext1652": Case(
        lambda r: layouts.write_geotext1652(r, n_train=3, n_test=2),
        "[drone, satellite, text]",
        "geobridge",
        val_key="T2I/R@1",
    ),
    "geoloc": Case(
        lambda r: layouts.write_geoloc(r, n_train=6, n_test=3),
        "[drone, street, satellite, text]",
        "geobridge",
        extra=("data.val_split=test",),
    ),
}


def dataset_name(case_id: str) -> str:
    return case_id.split("-")[0]


def overrides(case_id: str, root: Path, out: Path, *more: str) -> list[str]:
    case = CASES[case_id]
    items = [
        f"data.dataset={dataset_name(case_id)}",
        f"data.root={root}",
        f"data.views={case.views}",
        "model.preset=tiny",
        TINY_TOWERS,
        "data.batch_size=2",
        "optim.max_steps=2",
        "val_every=2",
        "optim.lr=1e-3",
        f"output_dir={out}",
        "progress=false",
        "tensorboard=false",
        *case.extra,
    ]
    if case.loss:
        items.append(f"loss.edge_set={case.loss}")
    items += [f"data.option.{key}={value}" for key, value in case.option.items()]
    return items + list(more)


def run(items: list[str]) -> Any:
    config = TrainConfig.load(None, items)
    return train(config, validate_fn=validation_fn(config))


def weights(result: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_trains_validates_and_resumes_on_the_official_layout(case_id, tmp_path):
    root = CASES[case_id].write(tmp_path / "data")
    straight = run(overrides(case_id, root, tmp_path / "straight"))
    assert straight.step == 2 and len(straight.losses) == 2
    assert all(torch.isfinite(torch.tensor(straight.losses)))
    val = (tmp_path / "straight" / "logs" / "val.csv").read_text().splitlines()
    assert (
        CASES[case_id].val_key in val[0].split(",") and len(val) == 2
    )  # one validation pass, its protocol's metrics
    assert (tmp_path / "straight" / "checkpoints" / "best" / "model").is_dir()
    # killed after step 1, then the same command again: it resumes and ends where the straight run did
    halted = run(overrides(case_id, root, tmp_path / "resumed", "stop_at_step=1"))
    assert halted.step == 1
    resumed = run(overrides(case_id, root, tmp_path / "resumed"))
    assert resumed.resumed_from_step == 1 and resumed.step == 2
    assert resumed.losses == straight.losses[1:]
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_epoch_over_university1652_runs_over_its_drone_images(tmp_path):
    root = layouts.write_university1652(tmp_path / "u1652", n_train=3, n_test=2, drone_per_building=4)
    config = TrainConfig.load(
        None, overrides("university1652-s4g", root, tmp_path / "out", "optim.max_steps=1000")
    )
    result = train(config)
    assert result.step == 3 * 4 // 2  # 12 drone items in batches of 2, no building twice in a batch
    from geobridge.train.engine import Trainer

    trainer = Trainer(config)
    batches = trainer.sampler.global_batches(0)
    ids = [[trainer.dataset.locations[i].id for i in batch] for batch in batches]
    assert all(len(set(batch)) == len(batch) for batch in ids)
    assert collections.Counter(i for batch in ids for i in batch) == {"0001": 4, "0002": 4, "0003": 4}


def test_prepare_writes_the_items_training_reads(tmp_path):
    root = layouts.write_university1652(tmp_path / "u1652", n_train=3, n_test=2)
    out = tmp_path / "prepared" / "u1652-train.parquet"
    done = CliRunner().invoke(
        app,
        [
            "data",
            "prepare",
            "--dataset",
            "university1652",
            "--root",
            str(root),
            "--out",
            str(out),
            "--views",
            "drone,satellite",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "9 training items of 3 places" in done.output
    from_dataset = run(overrides("university1652-s4g", root, tmp_path / "a", "val_every=null"))
    items = [
        i
        for i in overrides("university1652-s4g", root, tmp_path / "b", "val_every=null")
        if not i.startswith(("data.dataset", "data.root", "data.option"))
    ]
    from_manifest = train(TrainConfig.load(None, items + [f"data.manifest={out}"]))
    assert from_manifest.losses == from_dataset.losses
    bad = CliRunner().invoke(
        app,
        [
            "data",
            "prepare",
            "--dataset",
            "university1652",
            "--root",
            str(tmp_path / "nowhere"),
            "--out",
            str(out),
        ],
    )
    assert (
        bad.exit_code != 0 and "dataset root folder not found" in bad.output and "Traceback" not in bad.output
    )


def test_gleam_c_runs_on_two_datasets_with_each_source_sharing_every_batch(tmp_path):
    u1652 = layouts.write_university1652(tmp_path / "u1652", n_train=4, n_test=2)
    vigor = layouts.write_vigor(tmp_path / "vigor")
    sources = (
        f"data.sources=[{{dataset: university1652, root: {u1652}}}, "
        f"{{dataset: vigor, root: {vigor}, option: {{mode: same}}, weight: 1}}]"
    )
    items = [
        "model.preset=tiny",
        TINY_TOWERS,
        "data.views=[drone, street, satellite]",
        "data.batch_size=4",
        "loss.edge_set=satellite-centric",
        "loss.options={views: [drone, street]}",
        sources,
        f"output_dir={tmp_path / 'run'}",
        "progress=false",
        "tensorboard=false",
        f"phases=[{{name: vigor, epochs: 1, data: {{dataset: vigor, root: {vigor}, option: {{mode: same}}, "
        "views: [street, satellite]}}, {name: fuse, epochs: 1}]",
    ]
    config = TrainConfig.load(None, items)
    result = train(config, validate_fn=validation_fn(config))
    assert result.step > 0 and result.epoch == 2
    header = (tmp_path / "run" / "logs" / "val.csv").read_text().splitlines()[0].split(",")
    assert {"university1652/D2S/R@1", "vigor/P2S/R@1", "mean_R@1"} <= set(header)
    from geobridge.train.engine import Trainer

    fused = Trainer(config).phases[1]
    for batch in fused.sampler.global_batches(0):
        assert collections.Counter(fused.dataset.sources[i] for i in batch) == {
            "university1652": 2,
            "vigor": 2,
        }


def test_gps_neighbours_need_coordinates_and_say_so(tmp_path):
    root = layouts.write_university1652(tmp_path / "u1652", n_train=3, n_test=2)
    with pytest.raises(
        ConfigError, match="gps_neighbours=2 .*need coordinates; university1652 has none.*sim_neighbours"
    ):
        run(overrides("university1652-s4g", root, tmp_path / "gps", "data.gps_neighbours=2"))
    # similarity mining needs no coordinates
    mined = run(
        overrides(
            "university1652-s4g",
            root,
            tmp_path / "sim",
            "data.sim_neighbours=1",
            "data.sim_pool=2",
            "data.sim_from_epoch=0",
        )
    )
    assert mined.step == 2


def test_cli_errors_for_training_data_are_one_line(tmp_path):
    runner = CliRunner()
    none = runner.invoke(app, ["train", "model.preset=tiny", f"output_dir={tmp_path}"])
    assert none.exit_code != 0 and "no training data" in none.output
    both = runner.invoke(app, ["train", "data.manifest=m.parquet", "data.dataset=vigor", "data.root=V"])
    assert both.exit_code != 0 and "not data.manifest and data.dataset" in both.output
    absent = runner.invoke(
        app,
        [
            "train",
            "model.preset=tiny",
            "data.dataset=cvusa",
            f"data.root={tmp_path / 'no'}",
            f"output_dir={tmp_path / 'o'}",
        ],
    )
    assert absent.exit_code != 0 and "cvusa: dataset root folder not found" in absent.output
    assert all("Traceback" not in r.output for r in (none, both, absent))


def test_a_batch_wider_than_the_places_counts_places_not_items(tmp_path):
    root = layouts.write_university1652(tmp_path / "u1652", n_train=3, n_test=2)
    with pytest.raises(
        ConfigError, match=r"batch_size=8 fills no batch from the 3 training places \(9 items\)"
    ):
        run(overrides("university1652-s4g", root, tmp_path / "wide", "data.batch_size=8"))
