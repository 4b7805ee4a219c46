"""Batched embedding: batch-size invariance, flip TTA, skipping unreadable images, texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from geobridge.records import Location
from geobridge.retrieval.embed import UnreadableImageWarning, embed_images, embed_locations, embed_texts
from geobridge.views import View


@pytest.fixture(scope="module")
def model():
    from geobridge.models import create_model

    torch.manual_seed(0)
    return create_model("tiny")


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for n in range(6):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        pixels[:, :16] //= n + 1  # asymmetric, so the mirror image differs
        path = folder / f"loc{n}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_output_is_unit_rows_and_independent_of_batch_size(model, image_paths):
    one_by_one = embed_images(model, image_paths, View.SATELLITE, batch_size=1, progress=False)
    batched = embed_images(model, image_paths, View.SATELLITE, batch_size=4, progress=False)
    assert one_by_one.dtype == np.float32 and one_by_one.shape == (6, model.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one_by_one, batched, atol=1e-5)
    # Different images give different embeddings (the test would pass trivially otherwise).
    assert np.abs(batched[0] - batched[1]).max() > 1e-3


def test_flip_tta_averages_the_image_and_its_mirror(model, image_paths, tmp_path):
    mirrored = tmp_path / "mirror.png"
    Image.open(image_paths[2]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    plain = embed_images(model, [image_paths[2], mirrored], View.DRONE, progress=False)
    tta = embed_images(model, [image_paths[2]], View.DRONE, progress=False, tta="flip")
    expected = plain.sum(axis=0) / np.linalg.norm(plain.sum(axis=0))
    np.testing.assert_allclose(tta[0], expected, atol=1e-5)
    assert np.abs(tta[0] - plain[0]).max() > 1e-4
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        embed_images(model, image_paths[:1], View.DRONE, progress=False, tta="rotate")


def test_unreadable_images_are_skipped_with_a_warning_naming_them(model, image_paths, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text, not a PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image_paths[0].read_bytes()[:200])
    paths = [image_paths[0], not_an_image, image_paths[1], truncated, tmp_path / "missing.png"]
    locations = [
        Location(id=f"id{n}", lat=60.0 + n, lon=24.0, paths={"satellite": p}) for n, p in enumerate(paths)
    ]
    with pytest.warns(UnreadableImageWarning) as caught:
        embedded = embed_locations(model, locations, View.SATELLITE, progress=False)
    message = " ".join(str(w.message) for w in caught)
    for bad in ("notes.png", "truncated.png", "missing.png"):
        assert bad in message
    assert list(embedded.ids) == ["id0", "id2"]
    np.testing.assert_allclose(embedded.lat, [60.0, 62.0])
    assert list(embedded.paths) == [str(image_paths[0]), str(image_paths[1])]
    direct = embed_images(model, [image_paths[0], image_paths[1]], View.SATELLITE, progress=False)
    np.testing.assert_allclose(embedded.emb, direct, atol=1e-5)


def test_locations_without_the_view_are_left_out(model, image_paths):
    locations = [
        Location(id="a", lat=1.0, lon=2.0, paths={"drone": image_paths[0], "satellite": None}),
        Location(id="b", lat=3.0, lon=4.0, paths={"drone": image_paths[1], "satellite": image_paths[1]}),
    ]
    with pytest.warns(UserWarning, match="1 of 2 locations have no satellite view"):
        embedded = embed_locations(model, locations, "satellite", progress=False)
    assert list(embedded.ids) == ["b"]


def test_texts_and_location_texts(model):
    texts = ["a park beside a river", "a dense block of tall buildings", "a park beside a river"]
    emb = embed_texts(model, texts, batch_size=2, progress=False)
    assert emb.shape == (3, model.embed_dim)
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-5)
    assert np.abs(emb[0] - emb[1]).max() > 1e-4
    locations = [Location(id=str(n), lat=0.0, lon=float(n), text=t) for n, t in enumerate(texts)]
    embedded = embed_locations(model, locations, View.TEXT, progress=False)
    np.testing.assert_allclose(embedded.emb, emb, atol=1e-5)


def test_training_mode_is_restored(model, image_paths):
    model.train()
    try:
        embed_images(model, image_paths[:2], View.MAP, progress=False)
        assert model.training
    finally:
        model.eval()
