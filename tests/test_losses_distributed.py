"""Two gloo processes, each with half of a global batch, give the single-process loss and,
after DDP-style gradient averaging, the single-process gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from geobridge.losses import edge_set
from geobridge.views import View

GLOBAL_BATCH, IN_DIM, OUT_DIM = 8, 6, 4
VIEWS = (View.DRONE, View.STREET, View.SATELLITE, View.TEXT)


def _inputs() -> dict[View, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {v: torch.randn(GLOBAL_BATCH, IN_DIM, generator=g) for v in VIEWS}


def _masks() -> dict[View, torch.Tensor]:
    street = torch.ones(GLOBAL_BATCH, dtype=torch.bool)
    street[[1, 6]] = False  # one missing street view on each rank
    return {View.STREET: street}


def _layer() -> torch.nn.Linear:
    torch.manual_seed(3)
    return torch.nn.Linear(IN_DIM, OUT_DIM)


def _loss(layer: torch.nn.Linear, inputs: dict, masks: dict, gather: bool) -> torch.Tensor:
    z = {v: torch.nn.functional.normalize(layer(x), dim=1) for v, x in inputs.items()}
    return edge_set("geobridge", gather=gather, label_smoothing=0.1)(z, torch.tensor(5.0), masks=masks).total


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        half = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
        inputs = {v: x[half] for v, x in _inputs().items()}
        masks = {v: m[half] for v, m in _masks().items()}
        layer = _layer()
        loss = _loss(layer, inputs, masks, gather=True)
        loss.backward()
        for p in layer.parameters():  # what DDP does: average gradients over ranks
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world
        torch.save(
            {"loss": loss.detach(), "weight": layer.weight.grad, "bias": layer.bias.grad},
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.timeout(180)
def test_two_process_gather_equals_single_process(tmp_path: Path) -> None:
    world = 2
    # spawn, not fork: forking a process whose OpenMP pool earlier tests used can deadlock
    mp.start_processes(
        _worker,
        args=(world, str(tmp_path / "init"), str(tmp_path)),
        nprocs=world,
        join=True,
        start_method="spawn",
    )

    layer = _layer()
    single = _loss(layer, _inputs(), _masks(), gather=False)
    single.backward()
    # without gathering, the two halves would give a different (smaller-batch) loss
    half = slice(0, GLOBAL_BATCH // 2)
    local_only = _loss(
        _layer(), {v: x[half] for v, x in _inputs().items()}, {v: m[half] for v, m in _masks().items()}, False
    )
    assert abs(local_only.item() - single.item()) > 1e-3

    for rank in range(world):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["loss"].item() == pytest.approx(single.item(), rel=1e-5)
        torch.testing.assert_close(result["weight"], layer.weight.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(result["bias"], layer.bias.grad, rtol=1e-5, atol=1e-6)
