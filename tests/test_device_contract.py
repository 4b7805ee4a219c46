"""The device contract: every path that runs a model hands it inputs on the model's device.

The towers here refuse any input that is not on the device of their parameters. With no GPU in
the test machine, the "other device" is ``meta``: the model's parameters live there (a
shape-only pass), and a hook on each projection hands back CPU rows of the right shape so the
rest of the pipeline (search, metrics, verdicts) runs on numbers. Before the embedding engine
moved inputs to the model's device, embed, evaluate, validation, gallery build and locate all
handed CPU tensors to the towers and failed here ("input on cpu, parameters on meta").
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch

from geobridge.data.benchmarks.world import WorldBenchmark
from geobridge.evaluation.run_dataset import evaluate_model_on_dataset
from geobridge.evaluation.validation import validation_fn
from geobridge.explain.explainer import Explainer
from geobridge.models import create_model
from geobridge.records import read_manifest
from geobridge.retrieval.embed import embed_locations
from geobridge.retrieval.gallery import Gallery
from geobridge.train import TrainConfig, train
from geobridge.views import View

META = torch.device("meta")


class WrongDevice(AssertionError):
    """A tower received an input on another device than its parameters."""


def refuse_foreign_inputs(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
    device = next(module.parameters()).device
    for arg in args:
        if isinstance(arg, torch.Tensor) and arg.device != device:
            raise WrongDevice(
                f"{type(module).__name__} got an input on {arg.device}, its parameters are on {device}"
            )


def rows_on_cpu(module: torch.nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(output.shape[0])
    return torch.randn(tuple(output.shape), generator=generator)


def shape_only_twin(model: Any) -> Any:
    """A copy of ``model`` on the meta device whose towers refuse inputs from elsewhere."""
    twin = copy.deepcopy(model).to(META)
    for tower in twin.towers.values():
        tower.register_forward_pre_hook(refuse_foreign_inputs)
    for projection in twin.projections.values():
        projection.register_forward_hook(rows_on_cpu)
    return twin


@pytest.fixture()
def meta_weights_hash(monkeypatch):
    """A meta model has no weights to hash: fingerprint names and shapes instead."""

    def by_shape(model: Any) -> str:
        text = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
        return hashlib.sha256(text.encode()).hexdigest()

    monkeypatch.setattr("geobridge.retrieval.gallery.weights_hash", by_shape)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return shape_only_twin(create_model("tiny"))


def test_the_towers_refuse_a_cpu_input(model):
    with pytest.raises(WrongDevice):
        model.encode(View.SATELLITE, torch.zeros(1, 3, 32, 32))


def test_embed_images_and_texts(model, tiny_world_dir):
    locations = read_manifest(tiny_world_dir, split="test")
    for view in (View.SATELLITE, View.DRONE, View.TEXT):
        embedded = embed_locations(
            model, locations, view, progress=False, tta="flip" if view.is_image else None
        )
        assert embedded.emb.shape == (len(locations), model.embed_dim)


def test_evaluate_a_benchmark(model, tiny_world_dir):
    results = evaluate_model_on_dataset(
        model, WorldBenchmark(tiny_world_dir, split="test"), directions="D2S,T2S", progress=False
    )
    assert set(results) == {"D2S", "T2S"} and results["D2S"].n_query > 0


def test_gallery_build_and_locate(model, tiny_world_dir, meta_weights_hash):
    locations = read_manifest(tiny_world_dir, split="test")
    gallery = Gallery.build(model, locations, "satellite", progress=False)
    by_image = gallery.search(images=[locations[0].path(View.DRONE)], view="drone", k=3)
    by_text = gallery.search(text="a street with houses", k=3)
    assert len(by_image[0].matches) == 3 and len(by_text[0].matches) == 3


def test_explain_a_pair(model, tiny_world_dir):
    location = read_manifest(tiny_world_dir, split="test")[0]
    result = Explainer(model=model).explain(location.path(View.SATELLITE), location.path(View.DRONE), "drone")
    assert result.similarity is not None


def test_train_with_validation_on_the_models_device(tmp_path: Path, tiny_world_dir):
    config = TrainConfig.load(
        None,
        [
            "model.preset=tiny",
            f"data.manifest={tiny_world_dir}",
            "data.val_split=test",
            "data.batch_size=8",
            "optim.epochs=1",
            "optim.max_steps=2",
            f"output_dir={tmp_path / 'run'}",
            "progress=false",
            "tensorboard=false",
            "device=cpu",
            "val_every=2",
        ],
    )
    validate = validation_fn(config)
    assert validate is not None
    seen: list[dict[str, float]] = []

    def validate_elsewhere(trained: Any) -> dict[str, float]:  # the trainer's model, moved to another device
        seen.append(validate(shape_only_twin(trained)))
        return seen[-1]

    result = train(config, validate_fn=validate_elsewhere)
    assert result.step == 2 and seen and "mean_R@1" in seen[-1]
