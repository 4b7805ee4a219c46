"""evaluate_model_on_dataset: fixtures in real layouts, a tiny random model, the evaluation protocols."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from geobridge.data.benchmarks import load_benchmark  # noqa: E402
from geobridge.data.fixtures import write_fixture  # noqa: E402
from geobridge.evaluation.run_dataset import ModelViewError, embed_set, evaluate_model_on_dataset  # noqa: E402
from geobridge.models.embedder import EmbedOptions  # noqa: E402
from geobridge.views import View  # noqa: E402

N = 4


@pytest.fixture(scope="module")
def model():
    from geobridge.models import create_model

    return create_model("tiny")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("run-dataset")
    return {
        name: write_fixture(name, base / name, n_locations=N)
        for name in ("world", "vigor", "university1652", "geotext1652", "cvact")
    }


def test_world_directions_protocol_and_counts(model, roots):
    results = evaluate_model_on_dataset(model, "world", roots["world"], directions="D2S,T2M", progress=False)
    assert list(results) == ["D2S", "T2M"]
    for result in results.values():
        assert result.protocol == "geobridge" and result.n_query == result.n_gallery == N
        assert {"R@1", "R@5", "R@10", "R@1%", "AP", "L@50", "L@100", "L@150"} <= set(result.metrics)
        assert all(0.0 <= result.metrics[k] <= 100.0 for k in ("R@1", "R@5", "AP"))
        assert result.per_query["rank"].shape == (N,)
    # with 4 gallery items the true match is always within the top 5
    assert results["D2S"].metrics["R@5"] == 100.0


def test_embed_set_matches_direct_model_encoding(model, roots):
    from PIL import Image

    bench = load_benchmark("world", roots["world"])
    gallery = bench.gallery_set("D2S")
    embedded = embed_set(model, gallery, EmbedOptions(batch_size=3, progress=False))
    assert embedded.embeddings.ids.tolist() == gallery.ids and embedded.skipped == 0
    np.testing.assert_allclose(embedded.embeddings.lat, gallery.lat)
    import torch

    transform = model.image_transform(View.SATELLITE)
    model.eval()
    with torch.no_grad():
        direct = model.encode(
            View.SATELLITE, torch.stack([transform(Image.open(p).convert("RGB")) for p in gallery.paths])
        )
    np.testing.assert_allclose(embedded.embeddings.emb, direct.numpy(), atol=1e-5)


def test_vigor_passes_semi_positives_and_protocol_override(model, roots):
    result = evaluate_model_on_dataset(model, "vigor", roots["vigor"], progress=False)["P2S"]
    bench = load_benchmark("vigor", roots["vigor"])
    assert result.protocol == "vigor"
    assert result.n_query == len(bench.query_set("P2S")) == 2 * N
    assert result.n_gallery == len(bench.gallery_set("P2S"))
    # semi-positives reached the protocol: a query hits when only semi-positives outscore its positive
    hits = result.per_query["semi_positives_above"] == result.per_query["rank"]
    assert result.metrics["hit_rate"] == pytest.approx(100.0 * hits.mean())
    assert result.metrics["hit_rate"] >= result.metrics["R@1"]
    # another protocol on the same data: VIGOR's semi-positive option is not passed to it
    same_area = evaluate_model_on_dataset(
        model, "vigor", roots["vigor"], protocol="pairs", progress=False, mode="same"
    )["P2S"]
    assert same_area.protocol == "pairs" and "hit_rate" not in same_area.metrics
    assert same_area.n_query == 4 * (N // 2)


def test_university1652_default_and_selected_protocol(model, roots):
    default = evaluate_model_on_dataset(
        model, "university1652", roots["university1652"], directions=["D2S"], progress=False
    )["D2S"]
    s4g = evaluate_model_on_dataset(
        model,
        "university1652",
        roots["university1652"],
        directions="D2S",
        protocol="u1652-s4g",
        progress=False,
    )["D2S"]
    assert default.protocol == "u1652" and s4g.protocol == "u1652-s4g"
    assert default.n_query == s4g.n_query == 3 * N and default.n_gallery == N + N // 2
    # removing the distractors can only move true matches up
    assert np.all(s4g.per_query["rank"] <= default.per_query["rank"])


def test_text_queries_on_geotext(model, roots):
    results = evaluate_model_on_dataset(
        model, "geotext1652", roots["geotext1652"], directions="T2S", progress=False, match="image"
    )
    assert (
        results["T2S"].protocol == "pairs"
        and results["T2S"].n_query == 3 * N
        and results["T2S"].n_gallery == N
    )


def test_geotext_protocol_on_a_one_view_direction_names_its_reverse(model, roots):
    """The geotext protocol also scores the reverse; on T2S (not pooled) that is S2T (it once
    failed: only a pooled direction had a reverse name)."""
    results = evaluate_model_on_dataset(
        model,
        "geotext1652",
        roots["geotext1652"],
        directions="T2S",
        protocol="geotext",
        progress=False,
        match="image",
    )
    assert list(results) == ["T2S", "S2T"]
    assert results["S2T"].notes[0] == "dataset geotext1652, direction S2T"
    assert (results["S2T"].n_query, results["S2T"].n_gallery) == (N, 3 * N)


def test_geotext_official_pools_every_view_embedded_by_its_tower(model, roots):
    from geobridge.evaluation.protocols import evaluate

    results = evaluate_model_on_dataset(model, "geotext1652", roots["geotext1652"], progress=False)
    assert list(results) == ["T2I", "I2T"]  # both directions from one embedding of each set
    result, reverse = results["T2I"], results["I2T"]
    assert result.protocol == "geotext" and result.n_query == N * 4 * 3 and result.n_gallery == N * 4
    assert {"img_r1", "img_r5", "img_r10", "txt_r1", "txt_r5", "txt_r10", "r_mean", "R@1"} <= set(
        result.metrics
    )
    assert result.per_query["reverse_rank"].shape == (N * 4,)
    assert (reverse.n_query, reverse.n_gallery) == (N * 4, N * 4 * 3)
    assert (
        reverse.metrics["R@1"] == result.metrics["txt_r1"]
        and reverse.query_items.paths == result.gallery_items.paths
    )
    assert reverse.notes[0] == "dataset geotext1652, direction I2T"
    # the pooled gallery is each view's own embedding, concatenated in the loader's order
    bench = load_benchmark("geotext1652", roots["geotext1652"])
    parts = [embed_set(model, part, EmbedOptions(progress=False)) for part in bench.gallery_parts("T2I")]
    texts = embed_set(model, bench.query_set("T2I"), EmbedOptions(progress=False))
    gallery = np.concatenate([p.embeddings.emb for p in parts])
    expected = evaluate(
        texts.embeddings,
        type(texts.embeddings)(gallery, np.concatenate([p.embeddings.ids for p in parts])),
        "geotext",
    )
    for key, value in expected.metrics.items():
        assert result.metrics[key] == pytest.approx(value), key
    assert (
        result.gallery_items.extra["views"] == [View.DRONE] * 2 * N + [View.SATELLITE] * N + [View.STREET] * N
    )


def test_model_without_a_view_is_named_before_any_work(roots):
    from geobridge.models import ModelConfig, create_model, preset_config

    config = preset_config("tiny").model_dump()
    del config["towers"]["map"], config["image_towers"]["map"]
    no_map = create_model(ModelConfig(**config))
    with pytest.raises(
        ModelViewError,
        match=r"direction D2M needs a map tower, but the model has towers for: drone, street, satellite, text",
    ):
        evaluate_model_on_dataset(no_map, "world", roots["world"], directions="D2S,D2M", progress=False)


def test_unreadable_image_is_left_out_and_reported(model, tmp_path):
    root = write_fixture("cvact", tmp_path / "cvact", n_locations=N)
    bench = load_benchmark("cvact", root)
    victim = bench.gallery_set("P2S").paths[0]
    victim.write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="unreadable"):
        result = evaluate_model_on_dataset(model, bench, directions="P2S", progress=False)["P2S"]
    assert result.n_gallery == N - 1 and result.n_query == N
    assert any("1 unreadable gallery image" in note for note in result.notes)
    # the query whose match was dropped counts as a miss
    assert result.per_query["rank"][0] == -1


def test_bad_arguments_fail_early(model, roots):
    with pytest.raises(ValueError, match="world has no direction D2G"):
        evaluate_model_on_dataset(model, "world", roots["world"], directions="D2G", progress=False)
    with pytest.raises(ValueError, match="unknown protocol 'cmc'"):
        evaluate_model_on_dataset(model, "world", roots["world"], protocol="cmc", progress=False)


def test_results_carry_the_scored_items_in_index_order(model, roots):
    results = evaluate_model_on_dataset(model, "world", roots["world"], directions="D2S", progress=False)
    result = results["D2S"]
    bench = load_benchmark("world", roots["world"])
    assert result.query_items.paths == bench.query_set("D2S").paths
    assert result.gallery_items.ids == bench.gallery_set("D2S").ids
    # per-query indices point into the carried gallery: the positive carries the query's id
    for q, g in enumerate(result.per_query["positive_index"]):
        assert result.gallery_items.ids[int(g)] == result.query_items.ids[q]
    assert result.to_dict().keys() == {"protocol", "description", "n_query", "n_gallery", "metrics", "notes"}


def test_text_queries_carry_texts_not_paths(model, roots):
    result = evaluate_model_on_dataset(
        model, "geotext1652", roots["geotext1652"], directions="T2I", progress=False
    )["T2I"]
    assert result.query_items.paths is None
    assert len(result.query_items.texts) == result.n_query and all(result.query_items.texts)
    assert all(p.is_file() for p in result.gallery_items.paths)


def test_loader_options_mapping_reaches_the_loader(model, roots):
    cross = evaluate_model_on_dataset(model, "vigor", roots["vigor"], progress=False)["P2S"]
    same = evaluate_model_on_dataset(
        model, "vigor", roots["vigor"], progress=False, loader_options={"mode": "same"}
    )["P2S"]
    # same-area searches the satellites of all four cities, cross-area those of the two test cities
    assert same.n_gallery == 2 * cross.n_gallery
    assert {p.parent.parent.name for p in same.gallery_items.paths} == {
        "Chicago",
        "NewYork",
        "SanFrancisco",
        "Seattle",
    }
    assert {p.parent.parent.name for p in cross.gallery_items.paths} == {"Chicago", "SanFrancisco"}
    # a loader option named like a parameter of evaluate_model_on_dataset (University-1652's protocol)
    s4g = evaluate_model_on_dataset(
        model,
        "university1652",
        roots["university1652"],
        directions="D2S",
        progress=False,
        loader_options={"protocol": "u1652-s4g"},
    )["D2S"]
    assert s4g.protocol == "u1652-s4g"


def test_sues200_altitude_selects_its_files(model, tmp_path):
    root = write_fixture("sues200", tmp_path / "sues200", n_locations=N)
    at = {
        altitude: evaluate_model_on_dataset(
            model, "sues200", root, directions="D2S", progress=False, loader_options={"altitude": altitude}
        )["D2S"]
        for altitude in (150, 250)
    }
    for altitude, result in at.items():
        assert {p.relative_to(root).parts[:2] for p in result.query_items.paths} == {
            ("Testing", str(altitude))
        }
    assert at[150].query_items.ids == at[250].query_items.ids


def test_loader_option_errors(model, roots):
    with pytest.raises(
        ValueError, match=r"vigor does not take option\(s\) foo; its options are: mode, split, splits_dir"
    ):
        evaluate_model_on_dataset(model, "vigor", roots["vigor"], progress=False, loader_options={"foo": 1})
    with pytest.raises(ValueError, match="mode given both in loader_options and as keywords"):
        evaluate_model_on_dataset(
            model, "vigor", roots["vigor"], progress=False, loader_options={"mode": "same"}, mode="cross"
        )


def test_an_empty_text_query_is_a_miss_in_every_denominator(model, tmp_path):
    """It used to vanish from the query set (n_query N - 1, no note)."""
    from geobridge.records import read_manifest, write_manifest

    root = write_fixture("world", tmp_path / "world", n_locations=N)
    locations = read_manifest(root)
    test_ids = [loc.id for loc in locations if loc.split == "test"]
    blank = test_ids[0]
    locations = [dataclasses.replace(loc, text="  ") if loc.id == blank else loc for loc in locations]
    write_manifest(locations, Path(root) / "manifest.parquet")
    result = evaluate_model_on_dataset(model, "world", root, directions="T2S", progress=False)["T2S"]
    assert result.n_query == len(test_ids)
    assert any("1 empty text query(ies) count as misses" in note for note in result.notes)
    assert result.per_query["rank"][0] == -1  # the blank one is the first query: it matches nothing
