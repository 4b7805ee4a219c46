"""`geobridge train` under torchrun (2 gloo processes on CPU) and the ``model.sync_batchnorm`` switch.

What the engine guarantees under torchrun (see ``geobridge.train.distributed``): each rank takes a
contiguous share of every global batch, the loss all-gathers embeddings so negatives come from
the whole global batch, gradients are averaged, and only rank 0 writes checkpoints and logs.
Every item's random draws (joint flips and turns, colour jitter) are seeded by (seed, epoch,
index), so the ranks see exactly the items a single process would. It does not promise weights
equal to a single-process run: on CPU BatchNorm uses each rank's share's statistics
(SyncBatchNorm has no CPU kernel). So the end-to-end test rebuilds step 1 exactly as the two
ranks saw it (each share through BatchNorm on its own) and checks that the logged step-1 loss is
the loss over the *global* batch of those embeddings.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geobridge.data.manifest import collate
from geobridge.train import ConfigError, TrainConfig
from geobridge.train.batches import encode_views, masks_on, slice_batch
from geobridge.train.checkpoint import read_checkpoint
from geobridge.train.distributed import DistributedContext, apply_sync_batchnorm, wants_sync_batchnorm
from geobridge.train.engine import Trainer

WORLD = 2
GLOBAL_BATCH = 8


def tiny_cnn_model_file(root: Path) -> Path:
    """32 px tiny-cnn image towers (they have BatchNorm) and the tiny text tower."""
    image = {"backend": "tiny-cnn", "options": {"widths": [8, 16]}}
    config = {
        "name": "test-torchrun-tiny-cnn",
        "embed_dim": 32,
        "towers": {
            "drone": {**image, "image_size": 32},
            "street": {**image, "image_size": [32, 64]},
            "satellite": {**image, "image_size": 32},
            "text": {
                "backend": "tiny-text",
                "max_length": 32,
                "options": {"width": 32, "depth": 1, "heads": 2, "vocab_size": 512},
            },
        },
        "image_towers": {"drone": "drone", "street": "street", "satellite": "satellite"},
        "text_tower": "text",
    }
    path = root / "tiny-cnn.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> dict[str, Path]:
    """A rendered 24-location world (17 training locations) and a training YAML for it."""
    from geobridge.world.dataset import generate_world_dataset

    root = tmp_path_factory.mktemp("torchrun")
    manifest = generate_world_dataset(
        root / "world",
        locations=24,
        size=32,
        views=["drone", "street", "satellite"],
        world_size_m=600,
        regions=2,
        progress=False,
    )
    config = root / "train.yaml"
    config.write_text(
        f"model: {{preset: {tiny_cnn_model_file(root)}}}\n"
        f"data: {{views: [drone, street, satellite, text], batch_size: {GLOBAL_BATCH}}}\n"
        "optim: {name: adamw, lr: 3.0e-3, epochs: 2, warmup_steps: 1}\n"
        "loss: {edge_set: geobridge}\n"
        "log_every: 1\n"
        "seed: 7\n",
        encoding="utf-8",
    )
    return {"manifest": manifest, "config": config, "root": root}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def step_one_loss_as_ranks_saw_it(config: TrainConfig) -> dict[str, float]:
    """The step-1 loss rebuilt in this process: the global batch's embeddings, each rank's share
    encoded on its own (so BatchNorm sees that share only), then the loss over all of them together ("gathered"); and,
    for contrast, rank 0's share alone (the loss without the gather) and the global batch through
    BatchNorm at once (what SyncBatchNorm would give)."""
    trainer = Trainer(config)  # single process: same seed, same model, the global batch unsplit
    trainer.model.train()
    trainer.sampler.set_epoch(0)
    trainer.dataset.set_epoch(0)
    indices = next(iter(trainer.sampler))
    assert len(indices) == GLOBAL_BATCH
    share = GLOBAL_BATCH // WORLD
    torch.manual_seed(999)  # whatever the global RNG holds, the items' draws are seeded per item
    batch = collate([trainer.dataset[i] for i in indices])
    views = trainer.views
    with torch.no_grad():
        parts = [
            encode_views(trainer.model, slice_batch(batch, r * share, (r + 1) * share), views, trainer.device)
            for r in range(WORLD)
        ]
        gathered = {v: torch.cat([p[v] for p in parts]).float() for v in views}
        scale = trainer.model.logit_scale_value()
        loss = trainer.loss_fn(gathered, scale, masks_on(batch, views, trainer.device)).total
        rank0 = trainer.loss_fn(
            {v: parts[0][v].float() for v in views},
            scale,
            masks_on(slice_batch(batch, 0, share), views, trainer.device),
        ).total
        whole = encode_views(trainer.model, batch, views, trainer.device)  # BatchNorm over all 8
        synced = trainer.loss_fn(
            {v: e.float() for v, e in whole.items()}, scale, masks_on(batch, views, trainer.device)
        ).total
    return {"gathered": float(loss), "rank0_only": float(rank0), "global_batchnorm": float(synced)}


@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_torchrun_two_processes_train_command(run_files, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(WORLD),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "geobridge",
        "train",
        "--config",
        str(run_files["config"]),
        f"data.manifest={run_files['manifest']}",
        f"output_dir={out}",
        "optim.max_steps=3",
        "progress=false",
        "tensorboard=false",
        "--no-validate",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (
        f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert done.stdout.count("trained 3 steps") == WORLD  # each rank finished the same 3 steps

    # only rank 0 writes: one checkpoint folder, one log
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["last"]
    assert read_checkpoint(out / "checkpoints" / "last").position.step == 3
    with (out / "logs" / "train.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # one row per step: rank 1 did not log too
    losses = [float(r["loss"]) for r in rows]
    assert all(0.0 < x < 20.0 for x in losses)

    # the logged step-1 loss is the loss over the whole global batch (the gather works) ...
    config = TrainConfig.load(
        run_files["config"],
        [
            f"data.manifest={run_files['manifest']}",
            f"output_dir={tmp_path / 'reference'}",
            "optim.max_steps=3",
            "progress=false",
            "tensorboard=false",
        ],
    )
    reference = step_one_loss_as_ranks_saw_it(config)
    assert losses[0] == pytest.approx(reference["gathered"], rel=1e-5, abs=1e-6)
    # ... not that of rank 0's share alone (what the log shows with loss.options.gather=false)
    assert abs(reference["rank0_only"] - reference["gathered"]) > 1e-3
    # on CPU, model.sync_batchnorm=auto keeps per-rank BatchNorm statistics, as documented
    assert abs(reference["global_batchnorm"] - reference["gathered"]) > 1e-4


# --- model.sync_batchnorm ------------------------------------------------------------------------
TWO_RANKS = DistributedContext(rank=0, world_size=2)
ONE_PROCESS = DistributedContext()


def tiny_cnn_model(root: Path):
    from geobridge.models import create_model

    return create_model(str(tiny_cnn_model_file(root)))


def batchnorm_layers(model) -> dict[str, type]:
    return {
        name: type(m)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    }


@pytest.mark.parametrize(
    ("mode", "device", "context", "expected"),
    [
        ("auto", "cuda", TWO_RANKS, True),  # the only case "auto" converts
        ("auto", "cpu", TWO_RANKS, False),  # no CPU kernel: per-rank statistics
        ("auto", "cuda", ONE_PROCESS, False),  # nothing to synchronise
        (True, "cuda", TWO_RANKS, True),
        (True, "cpu", ONE_PROCESS, False),  # a single-process smoke run of a GPU config still runs
        (False, "cuda", TWO_RANKS, False),
    ],
)
def test_sync_batchnorm_decision(mode, device, context, expected):
    assert wants_sync_batchnorm(mode, torch.device(device), context) is expected


def test_sync_batchnorm_true_on_distributed_cpu_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"model\.sync_batchnorm=true needs a GPU.*model\.sync_batchnorm=auto"
    ):
        wants_sync_batchnorm(True, torch.device("cpu"), TWO_RANKS)


def test_sync_batchnorm_converts_every_layer_and_keeps_parameters(tmp_path):
    """Conversion needs neither a GPU nor a process group (only the training forward does)."""
    model = tiny_cnn_model(tmp_path)
    before = batchnorm_layers(model)
    assert before and set(before.values()) == {torch.nn.BatchNorm2d}
    parameters = {name: p for name, p in model.named_parameters()}
    keys = list(model.state_dict())
    model.tower("drone").requires_grad_(False)

    assert apply_sync_batchnorm(model, "auto", torch.device("cpu"), TWO_RANKS) == 0
    assert batchnorm_layers(model) == before  # CPU: left alone

    assert apply_sync_batchnorm(model, "auto", torch.device("cuda"), TWO_RANKS) == len(before)
    after = batchnorm_layers(model)
    assert after.keys() == before.keys() and set(after.values()) == {torch.nn.SyncBatchNorm}
    assert list(model.state_dict()) == keys  # checkpoints keep loading into the plain model
    assert all(p is parameters[name] for name, p in model.named_parameters())  # optimizer-safe
    assert not any(p.requires_grad for p in model.tower("drone").parameters())  # freezing kept


def _sync_config(tmp_path: Path, manifest: Path, mode: str) -> TrainConfig:
    return TrainConfig.load(
        None,
        [
            f"model.preset={tiny_cnn_model_file(tmp_path)}",
            f"model.sync_batchnorm={mode}",
            f"data.manifest={manifest}",
            f"data.batch_size={GLOBAL_BATCH}",
            f"output_dir={tmp_path / 'out'}",
            "progress=false",
            "tensorboard=false",
        ],
    )


def test_trainer_refuses_sync_batchnorm_true_before_training_on_distributed_cpu(
    run_files, tmp_path, monkeypatch
):
    """The Trainer, as rank 0 of two CPU processes, fails at set-up with the ConfigError (which
    ``geobridge train`` prints as a one-line error), not in the first forward pass."""
    monkeypatch.setattr("geobridge.train.engine.init_distributed", lambda device: TWO_RANKS)
    with pytest.raises(ConfigError, match="sync_batchnorm=true needs a GPU"):
        Trainer(_sync_config(tmp_path, run_files["manifest"], "true"))
    trainer = Trainer(_sync_config(tmp_path, run_files["manifest"], "auto"))  # auto: per-rank BatchNorm
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in trainer.model.modules())


def test_sync_batchnorm_config_values(tmp_path):
    assert TrainConfig.load(None, []).model.sync_batchnorm == "auto"
    assert TrainConfig.load(None, ["model.sync_batchnorm=true"]).model.sync_batchnorm is True
    assert TrainConfig.load(None, ["model.sync_batchnorm=false"]).model.sync_batchnorm is False
    with pytest.raises(ConfigError, match="model.sync_batchnorm"):
        TrainConfig.load(None, ["model.sync_batchnorm=sometimes"])
