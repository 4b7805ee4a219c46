"""geobridge plan: per-tower sizes of the full-size CLIP recipe, and the memory estimate against a
peak measured on the CPU.

The CPU peak is measured with torch's profiler (``profile_memory=True``): it records every
allocation and free of torch's CPU allocator in order, so their running sum is the bytes of live
tensors and its maximum the step's peak (RSS would add the Python heap and glibc's caching;
tracemalloc does not see torch's allocator). The profiled span covers building the trainer and
two training steps, as on a GPU where the weights live beside the step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from geobridge.cli import main  # noqa: E402
from geobridge.configs import resolve_config  # noqa: E402
from geobridge.train.config import TrainConfig  # noqa: E402
from geobridge.train.plan import plan_training  # noqa: E402


def test_plan_clip_l14_matches_the_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plan.json"
    assert main(["plan", "--config", "geobridge-clip-l14", "--gpus", "8", "--json", str(out)]) == 0
    plan = json.loads(out.read_text())
    for key in ("parameters", "trainable_parameters", "gflops_per_sample", "peak_memory_bytes"):
        assert key in plan
    # CLIP ViT-L/14: vision 303.2M + projection 1024x768; text 123.1M + projection 768x768
    for view in ("drone", "street", "satellite"):
        assert 303.0e6 < plan["towers"][view]["parameters"] < 304.5e6
        assert 150 < plan["gflops_per_sample"][view] < 165  # ~78 GMACs per 224 px image
    assert 123.0e6 < plan["towers"]["text"]["parameters"] < 124.0e6
    assert plan["trainable_parameters"] == plan["parameters"]  # the recipe freezes nothing
    assert plan["per_gpu_batch"] == 4
    peak = plan["peak_memory_bytes"]
    assert set(peak) == {"fp32", "bf16"} and all(set(row) == {"plain", "grad_cache"} for row in peak.values())
    assert peak["bf16"]["plain"] < peak["fp32"]["plain"]
    assert "drone" in capsys.readouterr().out


def test_plan_counts_frozen_towers_as_not_trainable() -> None:
    config = TrainConfig.load(resolve_config("geobridge-clip-l14"), ["model.freeze_all_but_last=3"])
    plan = plan_training(config)
    ratio = plan["trainable_parameters"] / plan["parameters"]
    assert 0.05 < ratio < 0.2  # 3 of 24 (vision) / 12 (text) layers, plus heads and projections


def measured_peak(config: TrainConfig) -> int:
    """Peak bytes of live CPU tensors while building the trainer and running its steps."""
    from torch.profiler import ProfilerActivity, profile

    from geobridge.train.engine import Trainer

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        Trainer(config).fit()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize(
    "recipe, extra, precision, strategy",
    [
        ("demo", ["data.batch_size=16", "optim.amp='off'"], "fp32", "plain"),
        # activations dominate here: a ViT trained whole, in bf16 autocast
        (
            "demo",
            [
                "model.preset=tiny-vit",
                "model.overrides={}",
                "model.cache_frozen_text=false",
                "model.freeze_views={}",
                "data.batch_size=24",
                "optim.amp=bf16",
            ],
            "bf16",
            "plain",
        ),
        (
            "demo",
            ["data.batch_size=24", "optim.grad_cache_micro_batch=4", "optim.amp='off'"],
            "fp32",
            "grad_cache",
        ),
    ],
)
def test_plan_estimate_is_within_25_percent_of_a_measured_cpu_peak(
    tiny_world_dir: Path, tmp_path: Path, recipe: str, extra: list[str], precision: str, strategy: str
) -> None:
    config = TrainConfig.load(
        resolve_config(recipe),
        [
            f"data.manifest={tiny_world_dir}",
            "optim.max_steps=2",
            "tensorboard=false",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
            "device=cpu",
            *extra,
        ],
    )
    plan = plan_training(config)
    estimate = plan["peak_memory_bytes"][precision][strategy]
    peak = measured_peak(config)
    assert abs(estimate - peak) / peak < 0.25, (estimate, peak)
    if "model.preset=tiny-vit" in extra:  # the check is about activations, not only weights
        per_sample = plan["memory_components_bytes"]["activations_per_sample"][precision]
        assert per_sample * 24 > 0.4 * peak
