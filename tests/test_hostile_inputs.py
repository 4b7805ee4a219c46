"""Every command that reads a file, against every kind of bad file (issue 14, item 7).

One table: (command, bad file, what must happen). An error is one ``error:`` line naming the
problem, a non-zero exit, no traceback and no output left behind; where a bad item is skipped by
design (a builder input, a file among many to embed), the run succeeds and says why it skipped
it. Before the image policy (:mod:`geobridge.images`), a bomb ended ``locate`` and ``explain``
in ``DecompressionBombError``, a bomb panorama ended ``build run`` in ``cv2.error``, a truncated
GeoTIFF in ``RasterioIOError``, a non-UTF-8 catalogue in ``UnicodeDecodeError``, and a bad drone
image ended ``complete-drone`` in a traceback or was copied unchecked.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from hostile_files import bomb_png, huge_jpeg, truncated, zero_bytes
from PIL import Image
from test_cli_faults import FAULTS, refuse_writes_under

from geobridge.cli import main
from geobridge.records import read_manifest

BAD_IMAGES = ("truncated", "zero bytes", "not an image", "bomb")


@dataclass(frozen=True)
class Outcome:
    """What a case must end with: an error (and a word of its line) or success (and a word of its output)."""

    code: int  # 0: success (a bad item skipped by design); else the exit status
    says: str  # in the error line, or in the output / report on success


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_world_dir) -> dict[str, Path]:
    """A tiny saved model, a gallery of the tiny world, build products with a build config."""
    from geobridge.models import create_model

    root = tmp_path_factory.mktemp("hostile")
    create_model("tiny").save_pretrained(root / "model")
    assert (
        main(
            [
                "gallery",
                "build",
                "--model",
                str(root / "model"),
                "--images",
                str(tiny_world_dir.parent),
                "--view",
                "satellite",
                "--out",
                str(root / "gallery"),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "build",
                "products",
                str(root / "products"),
                "--size-m",
                "500",
                "--panoramas",
                "4",
                "--gsd",
                "1.0",
                "--zoom",
                "17",
            ]
        )
        == 0
    )
    good = Image.effect_noise((96, 64), 60).convert("RGB")
    good.save(root / "good.jpg", quality=90)
    good.save(root / "good.png")
    return {
        "root": root,
        "model": root / "model",
        "gallery": root / "gallery",
        "world": tiny_world_dir.parent,
        "products": root / "products",
        "good_jpg": root / "good.jpg",
        "good_png": root / "good.png",
    }


def bad_image(kind: str, env: dict[str, Path], folder: Path, name: str = "bad") -> Path:
    """A bad image file of ``kind`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        return truncated(env["good_png"], folder / f"{name}.png", 0.5)
    if kind == "truncated jpeg":
        return truncated(env["good_jpg"], folder / f"{name}.jpg", 0.3)
    if kind == "zero bytes":
        return zero_bytes(folder / f"{name}.jpg")
    if kind == "not an image":
        (folder / f"{name}.png").write_text("<html>404 not found</html>")
        return folder / f"{name}.png"
    if kind == "bomb":
        return bomb_png(folder / f"{name}.png")
    if kind == "huge":  # 48 Mpx, over the 40 Mpx budget: decoded at half scale
        return huge_jpeg(folder / f"{name}.jpg", 8000, 6000)
    raise ValueError(kind)


def run(capsys, argv: list[str], outcome: Outcome) -> str:
    """Run the command; check the exit status, no traceback, and one error line for errors."""
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert code == outcome.code, text
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    if outcome.code:
        assert len(errors) == 1, captured.err
        assert outcome.says in errors[0], errors[0]
        return errors[0]
    assert not errors, captured.err
    return text


# ------------------------------------------------------------------------------------- locate, explain

QUERY_CASES = [
    (kind, Outcome(2, what))
    for kind, what in (
        ("truncated", "truncated or corrupt"),
        ("zero bytes", "empty (0 bytes)"),
        ("not an image", "not an image"),
        ("bomb", "40000 x 40000"),
    )
] + [("huge", Outcome(0, "rank"))]


@pytest.mark.parametrize("kind, outcome", QUERY_CASES)
def test_locate(env, tmp_path, capsys, kind, outcome):
    query = bad_image(kind, env, tmp_path)
    argv = ["locate", str(query), "--gallery", str(env["gallery"]), "--view", "satellite"]
    line = run(capsys, argv, outcome)
    assert outcome.code == 0 or str(query) in line


@pytest.mark.parametrize("kind, outcome", QUERY_CASES[:-1] + [("huge", Outcome(0, "match"))])
def test_explain(env, tmp_path, capsys, kind, outcome):
    satellite = bad_image(kind, env, tmp_path)
    line = run(
        capsys,
        ["explain", "--satellite", str(satellite), "--query", str(env["good_png"]), "--view", "drone"],
        outcome,
    )
    assert outcome.code == 0 or str(satellite) in line


# ------------------------------------------------------------------------------------- embed, world-sheet


def world_with(env: dict[str, Path], tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A copy of the tiny world whose first satellite image is replaced by a bad one."""
    world = tmp_path / "world"
    shutil.copytree(env["world"], world)
    victim = read_manifest(world)[0].path("satellite")
    victim.unlink()
    bad = bad_image(kind, env, victim.parent, victim.stem)
    bad.rename(victim)
    return world, victim


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_embed_skips_a_bad_image_and_names_it(env, tmp_path, capsys, kind):
    world, victim = world_with(env, tmp_path, kind)
    out = tmp_path / "e.npz"
    with pytest.warns(UserWarning, match="unreadable") as caught:
        text = run(
            capsys,
            [
                "embed",
                "--model",
                str(env["model"]),
                "--manifest",
                str(world),
                "--view",
                "satellite",
                "--out",
                str(out),
            ],
            Outcome(0, "wrote"),
        )
    assert victim.name in " ".join(str(w.message) for w in caught)
    assert f"wrote {len(read_manifest(world)) - 1} satellite embeddings" in text


@pytest.mark.parametrize("kind", ["bomb", "truncated"])
def test_world_sheet_with_a_bad_image_is_one_error_line(env, tmp_path, capsys, kind):
    world, victim = world_with(env, tmp_path, kind)
    out = tmp_path / "sheet.png"
    argv = ["world-sheet", str(world), "--out", str(out), "--count", "40"]
    line = run(capsys, argv, Outcome(2, victim.name))
    assert not out.exists() and line


def test_world_refuses_negative_workers(tmp_path, capsys):
    run(
        capsys,
        ["world", str(tmp_path / "w"), "-n", "4", "--workers", "-1"],
        Outcome(2, "--workers must be at least 1"),
    )
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------------------------------- weights, outputs


def test_embed_with_corrupt_weights_is_one_error_line(env, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(env["model"], model)
    truncated(model / "model.safetensors", model / "model.safetensors", 0.3)
    out = tmp_path / "e.npz"
    run(
        capsys,
        [
            "embed",
            "--model",
            str(model),
            "--manifest",
            str(env["world"]),
            "--view",
            "satellite",
            "--out",
            str(out),
        ],
        Outcome(1, "model.safetensors"),
    )
    assert not out.exists()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_gallery_build_on_an_unwritable_disk_is_one_error_line(env, tmp_path, monkeypatch, capsys, fault):
    code, message, advice = FAULTS[fault]
    out = tmp_path / "out"
    refuse_writes_under(monkeypatch, out, code, message)
    run(
        capsys,
        [
            "gallery",
            "build",
            "--model",
            str(env["model"]),
            "--images",
            str(env["world"]),
            "--view",
            "satellite",
            "--out",
            str(out / "g"),
            "--quiet",
        ],
        Outcome(1, advice),
    )
    assert not out.exists() or not any(out.rglob("*"))


# ------------------------------------------------------------------------------------- build complete-drone


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("truncated jpeg", "truncated or corrupt"),
        ("zero bytes", "empty"),
        ("truncated", "truncated or corrupt"),
        ("bomb", "40000 x 40000"),
        ("not an image", "not an image"),
    ],
)
def test_complete_drone_skips_a_bad_image_with_its_reason(env, tmp_path, capsys, kind, reason):
    import json

    from geobridge.geo import Footprint

    first = (env["products"] / "panoramas.csv").read_text().splitlines()[1].split(",")
    fp = Footprint.around(float(first[1]), float(first[2]), 60.0)
    name = f"{fp.south:.7f}_{fp.west:.7f}_{fp.north:.7f}_{fp.east:.7f}"
    bad = bad_image(kind, env, tmp_path / "drone" / "test", name)
    cfg = {
        "out": "unused",
        "panoramas": {"kind": "local", "catalogue": str(env["products"] / "panoramas.csv")},
        "satellite": {"kind": "xyz-dir", "path": str(env["products"] / "tiles"), "zoom": 17},
        "drone_subset": {"size_px": 32},
    }
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    text = run(
        capsys,
        [
            "build",
            "complete-drone",
            str(tmp_path / "drone"),
            str(out),
            "--config",
            str(tmp_path / "b.yaml"),
            "--quiet",
        ],
        Outcome(0, "skipped"),
    )
    assert "0 drone images completed" in text and "1 skipped" in text
    skipped = json.loads((out / "complete-drone.json").read_text())["skipped"]
    assert skipped[0]["item"] == bad.stem and reason in skipped[0]["reason"]
    assert not (out / "test").exists()  # nothing written for it, no empty folder


# ------------------------------------------------------------------------------------- build run

BUILD = {
    "crop": {"scales_m": [60], "size_px": 64, "max_nodata_fraction": 0.5},
    "seeds": {"window_m": 200, "stride_m": 100},
    "gates": {"blur_min": 0, "contrast_min": 0, "entropy_min": 0, "cloud_max": 1},
    "dedup": {"max_overlap": 1},
}


def build_config(
    env: dict[str, Path],
    tmp_path: Path,
    orthomosaics: list[Path] | None = None,
    catalogue: Path | None = None,
) -> Path:
    products = env["products"]
    cfg = {
        "out": str(tmp_path / "out"),
        "orthomosaics": [str(p) for p in orthomosaics or [products / "orthomosaic.tif"]],
        "panoramas": {"kind": "local", "catalogue": str(catalogue or products / "panoramas.csv")},
        "satellite": {"kind": "xyz-dir", "path": str(products / "tiles"), "zoom": 17},
        **BUILD,
    }
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "build.yaml"


def catalogue_with(env: dict[str, Path], tmp_path: Path, edit: Callable[[list[bytes]], list[bytes]]) -> Path:
    """The products' catalogue, absolute paths, rows edited by ``edit`` (header first)."""
    products = env["products"]
    lines = (products / "panoramas.csv").read_bytes().splitlines()
    absolute = b"," + str(products).encode() + b"/panoramas/"
    rows = [lines[0]] + [line.replace(b",panoramas/", absolute) for line in lines[1:]]
    path = tmp_path / "catalogue.csv"
    path.write_bytes(b"\n".join(edit(rows)) + b"\n")
    return path


def every_panorama_is(image: Path) -> Callable[[list[bytes]], list[bytes]]:
    def edit(rows: list[bytes]) -> list[bytes]:
        return [rows[0]] + [b",".join(r.split(b",")[:4] + [str(image).encode()]) for r in rows[1:]]

    return edit


def build_run(capsys, config: Path, outcome: Outcome) -> str:
    return run(capsys, ["build", "run", "--quiet", "--config", str(config)], outcome)


def test_build_run_with_a_bomb_panorama_skips_its_locations(env, tmp_path, capsys):
    bomb = bomb_png(tmp_path / "bomb.png")
    catalogue = catalogue_with(env, tmp_path, every_panorama_is(bomb))
    build_run(capsys, build_config(env, tmp_path, catalogue=catalogue), Outcome(0, "locations"))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "40000 x 40000" in report and "| 4 aligned (satellite + street + text) | 0 |" in report
    assert "| too many pixels |" in report


def test_build_run_with_a_20000_px_panorama_exports_it_at_a_sane_size(env, tmp_path, capsys):
    from geobridge.builder.pipeline import PANORAMA_MAX_SIDE_PX

    huge = huge_jpeg(tmp_path / "pano.jpg", 20_000, 20_000)
    catalogue = catalogue_with(env, tmp_path, every_panorama_is(huge))
    text = build_run(capsys, build_config(env, tmp_path, catalogue=catalogue), Outcome(0, "locations"))
    locations = read_manifest(tmp_path / "out")
    assert locations and f"{len(locations)} locations" in text
    for loc in locations:
        with Image.open(loc.path("street")) as street:
            assert max(street.size) == PANORAMA_MAX_SIDE_PX
    assert (tmp_path / "out" / "samples.png").exists()


def test_build_run_with_a_truncated_geotiff_among_good_ones_goes_on_and_resumes(env, tmp_path, capsys):
    broken = truncated(env["products"] / "orthomosaic.tif", tmp_path / "broken.tif", 0.3)
    config = build_config(env, tmp_path, orthomosaics=[broken, env["products"] / "orthomosaic.tif"])
    build_run(capsys, config, Outcome(0, "locations"))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "broken.tif" in report and "truncated or corrupt" in report
    build_run(capsys, config, Outcome(0, "locations"))  # resuming meets the same file and goes on


def test_build_run_with_a_non_utf8_catalogue_row_skips_that_row(env, tmp_path, capsys):
    catalogue = catalogue_with(env, tmp_path, lambda rows: rows + [rows[1].replace(b"pano0000", b"caf\xe9")])
    build_run(capsys, build_config(env, tmp_path, catalogue=catalogue), Outcome(0, "locations"))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "catalogue.csv row 5: byte 0xe9" in report and "save the catalogue as UTF-8" in report


def test_build_run_counts_a_panorama_outside_every_orthomosaic(env, tmp_path, capsys):
    def far_row(rows: list[bytes]) -> list[bytes]:
        fields = rows[1].split(b",")
        return rows + [b",".join([b"faraway", b"47.5", b"8.7"] + fields[3:])]

    catalogue = catalogue_with(env, tmp_path, far_row)
    build_run(capsys, build_config(env, tmp_path, catalogue=catalogue), Outcome(0, "locations"))
    report = (tmp_path / "out" / "report.md").read_text()
    counts = dict(
        line.strip("| ").split(" | ") for line in report.splitlines() if line.startswith("| panoramas ")
    )
    listed = len(catalogue.read_text().splitlines()) - 1
    found, outside = int(counts["panoramas found"]), int(counts["panoramas outside footprints"])
    assert found + outside == listed  # none vanish
    assert "`faraway` | outside footprints: at (47.500000, 8.700000)" in report


def test_build_run_without_any_georeferenced_orthomosaic_is_one_error_line(env, tmp_path, capsys):
    import rasterio

    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as dst:
        dst.write(np.full((3, 64, 64), 128, np.uint8))
    build_run(capsys, build_config(env, tmp_path, orthomosaics=[plain]), Outcome(2, "no geo-reference"))
    assert not (tmp_path / "out" / "manifest.parquet").exists()
