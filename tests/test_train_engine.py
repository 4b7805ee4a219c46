"""The training engine: exact resume, gradient caching, accumulation, NaN recovery, learning.

Models are built through ``geobridge.models`` from tiny configs written here (a few thousand
parameters at 32 px) so the whole file stays fast on a shared 2-core machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geobridge.losses import edge_set
from geobridge.models import create_model
from geobridge.records import Location, write_manifest
from geobridge.train import TrainConfig, train
from geobridge.train.batches import encode_views, masks_on
from geobridge.train.engine import Trainer
from geobridge.train.gradcache import grad_cache_step
from geobridge.views import View

VIEWS = (View.DRONE, View.STREET, View.SATELLITE, View.TEXT)


def tiny_model_file(tmp_path: Path, backend: str = "tiny-cnn") -> Path:
    """A model config with 32 px towers: tiny-cnn (has BatchNorm) or tiny-vit (no batch statistics)."""
    if backend == "tiny-cnn":
        image = {"backend": "tiny-cnn", "options": {"widths": [8, 16]}}
    else:
        image = {"backend": "tiny-vit", "options": {"width": 32, "depth": 2, "heads": 2, "patch_size": 8}}
    config = {
        "name": f"test-{backend}",
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
    path = tmp_path / f"{backend}.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def synthetic_manifest(tmp_path_factory) -> Path:
    """24 locations whose three views share a colour signature (learnable), plus a text."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(0)
    locations = []
    for i in range(24):
        base = rng.integers(0, 256, 3)
        paths = {}
        for view, shape in (("drone", (32, 32)), ("street", (32, 64)), ("satellite", (32, 32))):
            pixels = np.clip(base + rng.normal(0, 25, shape + (3,)), 0, 255).astype(np.uint8)
            path = root / "train" / view / f"loc{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
            paths[view] = path
        text = f"{'red' if base[0] > 128 else 'dark'} {'green' if base[1] > 128 else 'grey'} place {i}"
        locations.append(
            Location(id=f"loc{i}", lat=60.0 + i * 1e-3, lon=24.9, split="train", text=text, paths=paths)
        )
    return write_manifest(locations, root / "manifest.parquet")


def config_for(
    tmp_path: Path, manifest: Path, out: str, *extra: str, backend: str = "tiny-cnn"
) -> TrainConfig:
    return TrainConfig.load(
        None,
        [
            f"model.preset={tiny_model_file(tmp_path, backend)}",
            f"data.manifest={manifest}",
            "data.batch_size=8",
            "optim.epochs=2",
            "optim.lr=3e-3",
            "optim.warmup_steps=2",
            f"output_dir={tmp_path / out}",
            "progress=false",
            "tensorboard=false",
            "log_every=1",
            *extra,
        ],
    )


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_after_kill_is_bit_identical(tmp_path, synthetic_manifest):
    extra = ("data.rotate_p=0.5", "data.gps_neighbours=2", "data.gps_near=3")
    whole = train(config_for(tmp_path, synthetic_manifest, "whole", *extra))
    assert whole.step == 6 and not whole.stopped_early
    # "kill" the second run after 4 of 6 steps (inside epoch 2), then start it again
    killed = train(config_for(tmp_path, synthetic_manifest, "killed", *extra, "stop_at_step=4"))
    assert killed.step == 4 and killed.stopped_early
    resumed = train(config_for(tmp_path, synthetic_manifest, "killed", *extra))
    assert resumed.resumed_from_step == 4 and resumed.step == 6
    a, b = weights(whole.model), weights(resumed.model)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert resumed.losses == whole.losses[4:]
    # the CSV log of the resumed run reads as one run: steps 1..6 once each
    rows = (tmp_path / "killed" / "logs" / "train.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # the checkpoint's model loads on its own
    from geobridge.models import load_model

    saved = load_model(tmp_path / "killed" / "checkpoints" / "last" / "model")
    assert all(torch.equal(saved.state_dict()[k], b[k]) for k in b)


def test_similarity_mining_run_resumes_exactly(tmp_path, synthetic_manifest):
    """Mining from epoch 1 (24 locations, 3 steps per epoch): kill at an epoch boundary (the
    resumed run mines again from the restored weights) and inside the mined epoch (it reuses the
    table saved in the checkpoint); the final weights equal those of an uninterrupted run."""
    extra = (
        "optim.epochs=3",
        "data.sim_neighbours=3",
        "data.sim_pool=6",
        "data.sim_from_epoch=1",
        "data.views=[drone, street, satellite, text]",
        "data.sim_views=[drone, satellite]",
    )
    whole = train(config_for(tmp_path, synthetic_manifest, "whole", *extra))
    assert whole.step == 9
    saved = torch.load(tmp_path / "whole" / "checkpoints" / "last" / "train_state.pt", weights_only=True)
    mined = saved["extra"]["similarity_neighbours"]
    assert mined["epoch"] == 2 and tuple(mined["table"].shape) == (24, 6)
    table = mined["table"].numpy()
    assert ((table >= 0) & (table != np.arange(24)[:, None])).all()

    first = train(config_for(tmp_path, synthetic_manifest, "killed", *extra, "stop_at_step=3"))
    assert first.step == 3  # killed at the end of epoch 0, before epoch 1 mined anything
    second = train(config_for(tmp_path, synthetic_manifest, "killed", *extra, "stop_at_step=5"))
    assert second.resumed_from_step == 3 and second.step == 5  # killed inside epoch 1
    at_five = torch.load(tmp_path / "killed" / "checkpoints" / "last" / "train_state.pt", weights_only=True)
    assert at_five["extra"]["similarity_neighbours"]["epoch"] == 1
    # resuming inside epoch 1 hands the sampler the table epoch 1's start mined, not a fresh one
    trainer = Trainer(config_for(tmp_path, synthetic_manifest, "killed", *extra))
    trainer.resume_if_possible()
    trainer._prepare_neighbours(trainer.position.epoch)
    np.testing.assert_array_equal(
        trainer.sampler.similarity_table, at_five["extra"]["similarity_neighbours"]["table"].numpy()
    )

    resumed = train(config_for(tmp_path, synthetic_manifest, "killed", *extra))
    assert resumed.resumed_from_step == 5 and resumed.step == 9
    a, b = weights(whole.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert first.losses + second.losses + resumed.losses == whole.losses


def test_similarity_mining_packs_the_mined_neighbours(tmp_path, synthetic_manifest):
    """The batches of a mined epoch follow the table mined from the current weights."""
    from geobridge.models.embedder import EmbedOptions
    from geobridge.train.mining import mine_similarity_neighbours

    config = config_for(
        tmp_path,
        synthetic_manifest,
        "packs",
        "data.sim_neighbours=3",
        "data.sim_pool=3",
        "data.sim_from_epoch=0",
        "data.sim_views=[street, satellite]",
    )
    trainer = Trainer(config)
    before = weights(trainer.model)
    trainer.model.train()
    trainer._prepare_neighbours(0)
    assert trainer.model.training  # back in train mode after mining in eval mode
    assert all(torch.equal(before[k], v) for k, v in weights(trainer.model).items())  # BatchNorm untouched
    expected = mine_similarity_neighbours(
        trainer.model,
        trainer.dataset.locations,
        View.STREET,
        View.SATELLITE,
        pool=3,
        options=EmbedOptions(batch_size=64, progress=False),
    )
    np.testing.assert_array_equal(trainer.sampler.similarity_table, expected)
    batches = trainer.sampler.global_batches(0)
    anchor = batches[0][0]  # nothing is used before the first batch: its anchor's whole pool follows it
    assert batches[0][:4] == [anchor, *expected[anchor].tolist()]
    for number, batch in enumerate(batches):  # later anchors: their neighbours unless used already
        seen = {i for b in batches[:number] for i in b}
        assert batch[1] in set(expected[batch[0]].tolist()) or set(expected[batch[0]].tolist()) <= seen


def test_grad_cache_equals_big_batch(tmp_path, synthetic_manifest):
    """Same loss and same parameter gradients as one big-batch backward (tiny-vit: no BatchNorm)."""
    config = config_for(tmp_path, synthetic_manifest, "gc", "data.batch_size=12", backend="tiny-vit")
    trainer = Trainer(config)
    batch = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=12, collate_fn=_collate())))
    model, loss_fn, device = trainer.model, edge_set("geobridge"), torch.device("cpu")

    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    big = loss_fn(
        encode_views(model, batch, VIEWS, device), model.logit_scale_value(), masks_on(batch, VIEWS, device)
    )
    big.total.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    cached = grad_cache_step(model, batch, VIEWS, loss_fn, micro_batch=5, device=device)
    assert cached.finite
    torch.testing.assert_close(cached.total, big.total.detach(), rtol=1e-5, atol=1e-6)
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == reference.keys() and len(got) > 10
    for name in reference:
        torch.testing.assert_close(got[name], reference[name], rtol=1e-4, atol=1e-6, msg=name)


def test_accumulation_averages_sub_batch_gradients(tmp_path, synthetic_manifest):
    config = config_for(tmp_path, synthetic_manifest, "acc", "optim.accumulation_steps=2", backend="tiny-vit")
    trainer = Trainer(config)
    batch = next(iter(torch.utils.data.DataLoader(trainer.dataset, batch_size=8, collate_fn=_collate())))
    model, device = trainer.model, torch.device("cpu")
    from geobridge.train.batches import slice_batch

    model.zero_grad(set_to_none=True)
    expected_loss = 0.0
    for start, stop in ((0, 4), (4, 8)):
        part = slice_batch(batch, start, stop)
        out = trainer.loss_fn(
            encode_views(model, part, VIEWS, device), model.logit_scale_value(), masks_on(part, VIEWS, device)
        )
        (out.total / 2).backward()
        expected_loss += float(out.total.detach()) / 2
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    before = weights(model)
    # the engine's step: same gradients (checked through the optimizer's first Adam update)
    optimizer_step = trainer.optimizer.step
    captured = {}

    def capture():
        captured.update({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        optimizer_step()

    trainer.optimizer.step = capture
    outcome = trainer._step(batch)
    assert outcome.finite and outcome.loss == pytest.approx(expected_loss, rel=1e-5)
    for name in expected:
        torch.testing.assert_close(captured[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    assert any(not torch.equal(before[k], v) for k, v in weights(model).items())


def test_non_finite_loss_skips_step_and_restores_state(tmp_path, synthetic_manifest, caplog):
    """A NaN loss at step 3 (and weights corrupted by it) is skipped and the last good state restored."""
    base_loss = edge_set("geobridge")
    calls = {"n": 0}
    holder: dict = {}

    def flaky_loss(embeddings, logit_scale, masks=None):
        calls["n"] += 1
        out = base_loss(embeddings, logit_scale, masks)
        if calls["n"] == 3:
            with torch.no_grad():  # what a diverging forward does to BatchNorm buffers
                for name, buffer in holder["model"].named_buffers():
                    if name.endswith("running_mean"):
                        buffer.fill_(float("nan"))
            out.total = out.total * float("nan")
        return out

    config = config_for(tmp_path, synthetic_manifest, "nan", "optim.epochs=2")
    model = create_model(config.model.preset)
    holder["model"] = model
    with caplog.at_level("WARNING"):
        result = train(config, model=model, loss_fn=flaky_loss)
    assert result.skipped_steps == [3]
    assert math.isnan(result.losses[2]) and all(
        math.isfinite(x) for i, x in enumerate(result.losses) if i != 2
    )
    assert "step 3: non-finite loss" in caplog.text
    assert all(torch.isfinite(v).all() for v in weights(result.model).values() if v.is_floating_point())
    assert result.step == 6  # training went on after the bad step


def test_trainer_reduces_loss_on_tiny_world(tmp_path, tiny_world_dir):
    config = TrainConfig.load(
        None,
        [
            f"model.preset={tiny_model_file(tmp_path, 'tiny-vit')}",
            f"data.manifest={tiny_world_dir}",
            "data.batch_size=8",
            "data.flip_p=0",
            "optim.epochs=6",
            "optim.lr=2e-3",
            "optim.warmup_steps=1",
            f"output_dir={tmp_path / 'world'}",
            "progress=false",
            "tensorboard=false",
            "log_every=1",
        ],
    )
    trainer = Trainer(config)
    batch = next(
        iter(
            torch.utils.data.DataLoader(
                trainer.dataset, batch_size=len(trainer.dataset), collate_fn=_collate()
            )
        )
    )

    def full_loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            emb = encode_views(trainer.model, batch, VIEWS, torch.device("cpu"))
            value = float(
                trainer.loss_fn(
                    emb, trainer.model.logit_scale_value(), masks_on(batch, VIEWS, torch.device("cpu"))
                ).total
            )
        trainer.model.train()
        return value

    before = full_loss()
    result = trainer.fit()
    after = full_loss()
    assert result.step >= 12
    assert after < 0.9 * before, f"loss over the training set went from {before:.3f} to {after:.3f}"
    assert (tmp_path / "world" / "logs" / "train.csv").exists()


def test_validation_keeps_best_checkpoint(tmp_path, synthetic_manifest):
    scores = iter([10.0, 30.0, 20.0])

    def validate(model):
        assert not model.training
        return {"mean_R@1": next(scores)}

    result = train(
        config_for(tmp_path, synthetic_manifest, "val", "val_every=2", "optim.epochs=1"), validate_fn=validate
    )
    assert result.best == 30.0
    assert (tmp_path / "val" / "checkpoints" / "best" / "model" / "model.safetensors").exists()
    rows = (tmp_path / "val" / "logs" / "val.csv").read_text().splitlines()
    assert rows[0].startswith("step,mean_R@1") and len(rows) == 3  # steps 2 and epoch end (step 3)


def _collate():
    from geobridge.data.manifest import collate

    return collate
