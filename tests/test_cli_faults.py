"""One error path: a read-only or full disk, a missing permission, or a corrupt weights file
ends every command that writes or loads a model in one ``error:`` line naming the file and what
to do, a non-zero exit, no traceback and nothing half-written (they used to end in 46-62 line
tracebacks). Faults are injected by patching the calls every writer goes through (``os.mkdir``,
``os.open``, ``open``) for paths under the output folder, as a read-only mount would refuse them.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from geobridge.cli import main

FAULTS = {
    "read-only": (errno.EROFS, "Read-only file system", "read-only"),
    "disk full": (errno.ENOSPC, "No space left on device", "disk is full"),
    "permission": (errno.EACCES, "Permission denied", "permission denied"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_world_dir) -> dict[str, Path]:
    """A saved tiny model, the tiny world, rendered build products with a build config."""
    import yaml

    from geobridge.models import create_model

    root = tmp_path_factory.mktemp("faults")
    create_model("tiny").save_pretrained(root / "model")
    assert (
        main(
            [
                "build",
                "products",
                str(root / "products"),
                "--size-m",
                "300",
                "--panoramas",
                "2",
                "--gsd",
                "1.0",
                "--zoom",
                "16",
            ]
        )
        == 0
    )
    config = {
        "out": "out/build",
        "orthomosaics": ["products/orthomosaic.tif"],
        "panoramas": {"kind": "local", "catalogue": "products/panoramas.csv"},
        "satellite": {"kind": "xyz-dir", "path": "products/tiles", "zoom": 16},
    }
    (root / "build.yaml").write_text(yaml.safe_dump(config))
    return {
        "root": root,
        "model": root / "model",
        "world": tiny_world_dir.parent,
        "manifest": tiny_world_dir,
        "build": root / "build.yaml",
    }


def commands(f: dict[str, Path], out: Path, model: Path) -> dict[str, list[str]]:
    tiny_train = [
        "model.preset=tiny",
        f"data.manifest={f['manifest']}",
        "optim.epochs=1",
        "data.batch_size=8",
        "progress=false",
        "tensorboard=false",
    ]
    return {
        "world": [
            "world",
            str(out / "w"),
            "-n",
            "6",
            "--size",
            "32",
            "--views",
            "satellite",
            "--world-size",
            "500",
            "--regions",
            "2",
        ],
        "world-sheet": ["world-sheet", str(f["manifest"]), "--out", str(out / "sheet.png")],
        "embed": [
            "embed",
            "--model",
            str(model),
            "--manifest",
            str(f["manifest"]),
            "--view",
            "satellite",
            "--out",
            str(out / "e.npz"),
        ],
        "gallery build": [
            "gallery",
            "build",
            "--model",
            str(model),
            "--images",
            str(f["world"]),
            "--view",
            "satellite",
            "--out",
            str(out / "g"),
        ],
        "evaluate --model": [
            "evaluate",
            "--model",
            str(model),
            "--dataset",
            "world",
            "--root",
            str(f["world"]),
            "--directions",
            "D2S",
            "--json",
            str(out / "r.json"),
        ],
        "train": ["train", *tiny_train, f"output_dir={out / 'run'}"],
        "build run": ["build", "run", "--quiet", "--config", str(f["build"]), "--out", str(out / "build")],
    }


def refuse_writes_under(monkeypatch, folder: Path, code: int, message: str) -> None:
    """Every directory or file creation under ``folder`` fails like the disk would."""
    prefix = str(folder)

    def under(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(prefix)

    def guard(real: Callable, is_write: Callable[..., bool]):
        def call(path, *args, **kwargs):
            if under(path) and is_write(*args, **kwargs):
                raise OSError(code, message, None if code == errno.ENOSPC else os.fspath(path))
            return real(path, *args, **kwargs)

        return call

    def open_for_writing(mode="r", *args, **kwargs) -> bool:
        return any(c in mode for c in "wax+")

    def os_open_for_writing(flags, *args, **kwargs) -> bool:
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    monkeypatch.setattr(os, "mkdir", guard(os.mkdir, lambda *a, **k: True))
    monkeypatch.setattr(os, "open", guard(os.open, os_open_for_writing))
    monkeypatch.setattr(builtins, "open", guard(builtins.open, open_for_writing))


def assert_one_error_line(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured.err
    return errors[0]


WRITERS = ["world", "world-sheet", "embed", "gallery build", "evaluate --model", "train", "build run"]
#: every command on a read-only disk; the other faults take the same path, shown on three commands
CASES = [(c, "read-only") for c in WRITERS] + [
    (c, f) for c in ("world", "embed", "gallery build") for f in ("disk full", "permission")
]


@pytest.mark.parametrize("command, fault", CASES)
def test_an_unwritable_output_is_one_error_line(files, tmp_path, monkeypatch, capsys, command, fault):
    code, message, advice = FAULTS[fault]
    out = tmp_path / "out"
    argv = commands(files, out, files["model"])[command]
    refuse_writes_under(monkeypatch, out, code, message)
    line = assert_one_error_line(capsys, main(argv))
    monkeypatch.undo()
    assert message in line and advice in line
    if fault != "disk full":
        assert str(out) in line  # the file or folder that could not be written is named
    assert not out.exists() or not any(out.rglob("*")), "nothing may be left half-written"


def test_a_full_disk_while_writing_names_the_output(tmp_path, monkeypatch, capsys, files):
    """ENOSPC from a write names no file; the atomic writer adds the file it was writing."""
    import numpy as np

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    monkeypatch.setattr(np, "savez_compressed", full)
    out = tmp_path / "out"
    line = assert_one_error_line(capsys, main(commands(files, out, files["model"])["embed"]))
    assert str(out / "e.npz") in line and "disk is full" in line
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
@pytest.mark.parametrize("command", ["embed", "gallery build", "evaluate --model", "train"])
def test_a_corrupt_weights_file_is_one_error_line(files, tmp_path, capsys, command, damage):
    model = tmp_path / "model"
    shutil.copytree(files["model"], model)
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"garbage": b"not a safetensors file" * 8, "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )
    out = tmp_path / "out"
    argv = commands(files, out, model)[command]
    if command == "train":  # train on from the damaged saved model
        argv = [
            "train",
            f"model.preset={model}",
            f"data.manifest={files['manifest']}",
            "optim.epochs=1",
            f"output_dir={out / 'run'}",
            "progress=false",
            "tensorboard=false",
        ]
    line = assert_one_error_line(capsys, main(argv))
    assert str(weights) in line and "save or copy the model again" in line
    assert not out.exists() or not any(out.rglob("*")), "nothing may be written"
