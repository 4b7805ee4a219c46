"""Replacing a folder (checkpoint ``last/``, a gallery, a world) survives a kill at any instant.

A kill is simulated two ways: a child process that dies (``os._exit``) at a chosen rename, and,
in process, a rename that raises a ``BaseException`` the code cannot handle (every later rename
fails too, as nothing runs after a kill). The next start must find a complete folder.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geobridge.atomic import atomic_directory, recover_directory

SRC = Path(__file__).resolve().parents[1] / "src"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def kill_at_rename_onto(monkeypatch, name: str) -> None:
    """Every ``os.replace`` whose destination is called ``name`` 'kills' the process."""
    real = os.replace

    def replace(src, dst, **kwargs):
        if Path(dst).name == name:
            raise Killed(f"killed renaming {src} -> {dst}")
        return real(src, dst, **kwargs)

    monkeypatch.setattr("geobridge.atomic.os.replace", replace)


def write_in_child(target: Path, content: str, die_at_rename: int | None) -> int:
    """Replace ``target`` with a folder holding ``content`` in a child that dies at rename N."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(SRC)!r})
        import geobridge.atomic as atomic
        real, calls = os.replace, [0]
        def replace(src, dst):
            calls[0] += 1
            if calls[0] == {die_at_rename!r}:
                os._exit(9)
            real(src, dst)
        atomic.os.replace = replace
        with atomic.atomic_directory({str(target)!r}) as tmp:
            (tmp / "content.txt").write_text({content!r})
            if {die_at_rename!r} == 0:
                os._exit(9)
    """)
    return subprocess.run([sys.executable, "-c", script], timeout=60).returncode


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


@pytest.mark.parametrize("die_at, expected", [(0, "old"), (1, "old"), (2, "old"), (None, "new")])
def test_a_kill_at_any_instant_leaves_a_complete_folder(tmp_path, die_at, expected):
    """Killed while writing (0), at the first rename (1), between the two renames (2), or not at
    all (None): the next start sees one complete folder and no leftovers."""
    target = tmp_path / "w"
    with atomic_directory(target) as tmp:
        (tmp / "content.txt").write_text("old")
    code = write_in_child(target, "new", die_at)
    assert code == (0 if die_at is None else 9)
    if die_at in (1, 2):
        assert leftovers(target), "the kill should have left the old copy or the new one beside the target"
    recover_directory(target)
    assert (target / "content.txt").read_text() == expected
    assert leftovers(target) == []


def test_a_kill_after_both_renames_keeps_the_new_folder(tmp_path):
    """The old copy still beside the new one (killed before deleting it) is swept, the new one kept."""
    target = tmp_path / "gallery"
    target.mkdir()
    (target / "content.txt").write_text("new")
    old = tmp_path / ".gallery.old-999999999"
    old.mkdir()
    (old / "content.txt").write_text("old")
    recover_directory(target)
    assert (target / "content.txt").read_text() == "new" and leftovers(target) == []


def test_leftovers_of_a_running_writer_are_left_alone(tmp_path):
    target = tmp_path / "last"
    busy = tmp_path / f".last.{os.getppid()}-abcd1234.tmp"  # the parent (pytest's launcher) is alive
    busy.mkdir()
    recover_directory(target)
    assert busy.exists()


def test_new_folders_are_readable_by_others(tmp_path):
    old_mask = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "file.bin").write_bytes(b"x")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "file.bin").stat().st_mode) == 0o644


def test_training_killed_while_replacing_last_resumes_from_it(tmp_path, capsys):
    """A kill between the renames of ``last/`` used to lose it (training restarted at step 0)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from test_train_engine import config_for

    from geobridge.train import train

    manifest = _synthetic(tmp_path)
    extra = ("tensorboard=true",)
    first = train(config_for(tmp_path, manifest, "run", *extra, "stop_at_step=4"))
    assert first.step == 4
    with pytest.MonkeyPatch.context() as patch:
        kill_at_rename_onto(patch, "last")
        with pytest.raises(Killed):  # steps 5 and 6 run and are logged; saving them is killed
            train(config_for(tmp_path, manifest, "run", *extra))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not (checkpoints / "last").exists() and leftovers(checkpoints / "last")
    capsys.readouterr()
    resumed = train(config_for(tmp_path, manifest, "run", *extra))
    assert resumed.resumed_from_step == 4 and resumed.step == 6
    assert "resuming from step 4" in capsys.readouterr().err
    assert leftovers(checkpoints / "last") == []
    events = EventAccumulator(str(tmp_path / "run" / "logs" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]  # 5, 6 of the killed run purged


def _synthetic(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    from geobridge.records import Location, write_manifest

    rng = np.random.default_rng(0)
    locations = []
    for i in range(24):
        paths = {}
        for view, shape in (("drone", (32, 32)), ("street", (32, 64)), ("satellite", (32, 32))):
            path = tmp_path / "data" / view / f"loc{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)).save(path)
            paths[view] = path
        locations.append(
            Location(id=f"loc{i}", lat=60 + i * 1e-3, lon=24.9, split="train", text=f"place {i}", paths=paths)
        )
    return write_manifest(locations, tmp_path / "data" / "manifest.parquet")


def test_gallery_killed_while_being_replaced_loads_the_complete_copy(tmp_path, tiny_world_dir):
    from geobridge.models import create_model
    from geobridge.records import read_manifest
    from geobridge.retrieval.gallery import Gallery

    locations = read_manifest(tiny_world_dir)
    model = create_model("tiny")
    folder = tmp_path / "gallery"
    Gallery.build(model, locations[:10], "satellite", out=folder, progress=False)
    with pytest.MonkeyPatch.context() as patch:
        kill_at_rename_onto(patch, "gallery")
        with pytest.raises(Killed):
            Gallery.load(folder, model=model).add(locations[10:20], progress=False)
    assert not folder.exists()
    assert len(Gallery.load(folder)) == 10 and leftovers(folder) == []


def test_world_killed_while_being_replaced_reads_the_complete_copy(tmp_path):
    from geobridge.records import read_manifest
    from geobridge.world.dataset import generate_world_dataset

    out = tmp_path / "w"
    settings = {"size": 32, "world_size_m": 500.0, "regions": 2, "views": "satellite", "progress": False}
    generate_world_dataset(out, locations=6, seed=0, **settings)
    with pytest.MonkeyPatch.context() as patch:
        kill_at_rename_onto(patch, "w")
        with pytest.raises(Killed):
            generate_world_dataset(out, locations=8, seed=1, overwrite=True, **settings)
    assert not out.exists()
    assert len(read_manifest(out / "manifest.parquet")) == 6 and leftovers(out) == []


def test_a_saved_model_is_readable_by_a_service_account(tmp_path):
    """safetensors writes its file 0600; a model (and so a checkpoint or gallery's) is 0644 in 0755 now."""
    from geobridge.models import create_model

    old_mask = os.umask(0o022)
    try:
        create_model("tiny").save_pretrained(tmp_path / "model")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "model").iterdir()} == {0o644}
