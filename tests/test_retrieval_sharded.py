"""`geobridge embed` under torchrun: 2 gloo processes give the single-process rows, row for row,
and a rerun reuses the chunk files an interrupted run left."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geobridge.embeddings import Embeddings
from geobridge.models import create_model, load_model
from geobridge.models.embedder import EmbedOptions
from geobridge.records import Location, write_manifest
from geobridge.retrieval.embed import embed_locations
from geobridge.retrieval.sharded import Ranks, encode_sharded, shard_dir_for
from geobridge.views import View

N_IMAGES = 11
CHUNK = 3  # 4 chunks over 2 ranks, the last one short


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sharded")
    rng = np.random.default_rng(0)
    locations = []
    for n in range(N_IMAGES):
        path = root / f"sat{n}.png"
        if n == 4:
            path.write_text("not an image")  # skipped by every rank alike
        else:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        locations.append(Location(id=f"loc{n}", lat=60.0 + n / 100, lon=24.0, paths={"satellite": str(path)}))
    torch.manual_seed(0)
    create_model("tiny").save_pretrained(root / "model")
    return {
        "root": root,
        "model": root / "model",
        "manifest": write_manifest(locations, root / "manifest.parquet"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def torchrun_embed(files: dict[str, Path], out: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "geobridge",
        "embed",
        "--model",
        str(files["model"]),
        "--manifest",
        str(files["manifest"]),
        "--view",
        "satellite",
        "--out",
        str(out),
        "--chunk-size",
        str(CHUNK),
        "--device",
        "cpu",
        "--workers",
        "0",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (
        f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def single_process(files: dict[str, Path]) -> Embeddings:
    from geobridge.records import read_manifest

    with pytest.warns(UserWarning, match="sat4.png"):
        return embed_locations(
            load_model(files["model"]),
            read_manifest(files["manifest"]),
            View.SATELLITE,
            EmbedOptions(num_workers=0, progress=False),
        )


@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_two_ranks_equal_one_process_row_for_row(files, tmp_path):
    out = tmp_path / "sat.npz"
    torchrun_embed(files, out)
    sharded, single = Embeddings.load(out), single_process(files)
    assert list(sharded.ids) == list(single.ids) and len(single) == N_IMAGES - 1
    np.testing.assert_array_equal(sharded.paths, single.paths)
    np.testing.assert_allclose(sharded.lat, single.lat)
    np.testing.assert_allclose(sharded.emb, single.emb, atol=1e-6)
    assert not shard_dir_for(out).exists()  # rank 0 removed the chunks once the output was written


@pytest.mark.distributed
@pytest.mark.timeout(240)
def test_a_rerun_resumes_from_the_chunks_already_written(files, tmp_path):
    out = tmp_path / "sat.npz"
    model = load_model(files["model"])
    paths = [str(files["root"] / f"sat{n}.png") for n in range(N_IMAGES)]
    options = EmbedOptions(num_workers=0, progress=False, precision="auto")
    with pytest.warns(UserWarning):  # an "interrupted" run: its chunks are written, nothing merged
        encode_sharded(model, paths, View.SATELLITE, options, shard_dir_for(out), Ranks(0, 1), CHUNK)
    marked = shard_dir_for(out) / "chunk-0000000003.npz"
    with np.load(marked) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["emb"] = np.full_like(arrays["emb"], 0.5)  # a reused chunk shows through in the output
    with open(marked, "wb") as handle:
        np.savez(handle, **arrays)
    torchrun_embed(files, out)
    rows = Embeddings.load(out)
    assert list(rows.ids[3:6]) == ["loc3", "loc5", "loc6"]  # loc4 unreadable
    np.testing.assert_array_equal(rows.emb[3:5], 0.5)
    assert not np.allclose(rows.emb[:3], 0.5)
