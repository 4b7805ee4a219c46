"""`geobridge evaluate --option KEY=VALUE`: values converted by the declared type of the option
(a protocol's options dataclass in --query mode, the loader's signature in --model mode)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from geobridge.cli import app
from geobridge.cli.evaluate import parse_loader_options, parse_protocol_options
from geobridge.cli.option_values import OptionValueError, convert, declared_types, describe
from geobridge.embeddings import Embeddings
from geobridge.evaluation.protocols import (
    CommonOptions,
    GeoBridgeOptions,
    U1652Options,
    VigorOptions,
    list_protocols,
)


def run(args):
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    ("raw", "hint", "expected"),
    [
        ("true", bool, True),
        ("No", bool, False),
        ("200", int, 200),
        ("0.5", float, 0.5),
        ("3", float, 3.0),
        ("2019", str, "2019"),
        ("[0-9]+_(\\w+)", str, "[0-9]+_(\\w+)"),
        ("null", int | None, None),
        ("7", int | None, 7),
        ("25,50,100", tuple[float, ...], (25.0, 50.0, 100.0)),
        ("(20, 6, 0.3)", tuple[int, int, float], (20, 6, 0.3)),
        ("1,2", list[int], [1, 2]),
        ("true", bool | tuple[int, int, float] | None, True),
        ("20,6,0.3", bool | tuple[int, int, float] | None, (20, 6, 0.3)),
    ],
)
def test_values_convert_by_their_declared_type(raw, hint, expected):
    value = convert(raw, hint)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "hint", "expected"),
    [
        ("high", int, "int"),
        ("0.5", int, "int"),
        ("maybe", bool, "true or false"),
        ("1,x", tuple[float, ...], "comma-separated float list"),
        ("20,6", tuple[int, int, float], "int,int,float"),
        ("null", int, "int"),
    ],
)
def test_bad_values_say_the_expected_type(raw, hint, expected):
    with pytest.raises(OptionValueError) as caught:
        convert(raw, hint)
    assert caught.value.expected == expected


def test_protocol_options_follow_the_options_dataclasses():
    assert declared_types(U1652Options)["rerank"] == bool | tuple[int, int, float] | None
    assert describe(declared_types(VigorOptions)["radii_m"]) == "comma-separated float list"
    assert parse_protocol_options("u1652", ["multi_query=true", "rerank=20,6,0.3", "top_k=5"]) == {
        "multi_query": True,
        "rerank": (20, 6, 0.3),
        "top_k": 5,
    }
    assert parse_protocol_options("vigor", ["radii_m=10,20"]) == {"radii_m": (10.0, 20.0)}
    assert parse_protocol_options("geobridge", ["match_by=stem", "chunk_size=null"]) == {
        "match_by": "stem",
        "chunk_size": None,
    }
    assert {f for f in declared_types(CommonOptions)} <= set(declared_types(GeoBridgeOptions))


def test_unknown_protocol_option_names_the_key_the_options_and_their_types(capsys):
    with pytest.raises(typer.Exit):
        parse_protocol_options("pairs", ["radii_m=1,2"])
    err = capsys.readouterr().err
    assert "protocol pairs has no option 'radii_m'" in err
    assert "its options are: top_k, chunk_size" in err and "top_k: int; chunk_size: int or null" in err


def test_bad_protocol_option_value_names_the_key_and_the_type(capsys):
    with pytest.raises(typer.Exit):
        parse_protocol_options("u1652", ["rerank=20,6"])
    err = capsys.readouterr().err
    assert "--option rerank=20,6: u1652's rerank takes true or false or int,int,float or null" in err
    assert "its options are: top_k, chunk_size, multi_query, rerank" in err


def test_loader_options_keep_their_types():
    assert parse_loader_options("sues200", ["altitude=200", "train_places=100"]) == {
        "altitude": 200,
        "train_places": 100,
    }
    assert parse_loader_options("university1652", ["rerank=yes"]) == {"rerank": True}


@pytest.fixture
def npz(tmp_path):
    rad = np.radians([0.0, 60.0, 120.0])
    vectors = np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)
    lat, lon = np.array([45.0, 45.001, 45.002]), np.array([7.0, 7.0, 7.0])
    for name in ("q", "g"):
        Embeddings(vectors, np.array(["a", "b", "c"]), lat=lat, lon=lon).save(tmp_path / f"{name}.npz")
    return ["evaluate", "--query", str(tmp_path / "q.npz"), "--gallery", str(tmp_path / "g.npz"), "--quiet"]


def test_cli_protocol_options_reach_the_protocol(npz, tmp_path):
    out = run(
        [*npz, "--protocol", "geobridge", "--option", "radii_m=10,20", "--json", str(tmp_path / "r.json")]
    )
    assert out.exit_code == 0, out.output
    metrics = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert "L@10" in metrics and "L@20" in metrics and "L@50" not in metrics


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "pairs", "--option", "top_k=many"], "--option top_k=many: pairs's top_k takes int"),
        (["--protocol", "vigor", "--option", "semi_positives=a"], "--semi-positives FILE"),
        (["--protocol", "pairs", "--option", "mode=same"], "use it with --model/--dataset"),
        (["--protocol", "geobridge", "--match-by", "id", "--option", "match_by=stem"], "give it once"),
        (["--protocol", "nope", "--option", "top_k=1"], "unknown protocol 'nope'"),
    ],
)
def test_cli_bad_protocol_options_are_one_line_errors(npz, args, message):
    out = run([*npz, *args])
    assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output


def test_help_lists_the_registered_protocols():
    out = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "400"})
    assert out.exit_code == 0
    assert all(name in out.output for name in list_protocols())
