"""The frozen text tower cache: same features as the tower, each text encoded once, shareable."""

from __future__ import annotations

import torch

from geobridge.models import create_model
from geobridge.train.frozen_cache import cached_frozen_text_tower
from geobridge.views import View

TEXTS = [f"place {i} " + "with a long street " * (i % 5) for i in range(10)]


def _frozen_tiny_model():
    model = create_model("tiny", views=["satellite", "text"])
    model.tower(View.TEXT).requires_grad_(False)
    return model


def _count_tower_calls(tower) -> list[int]:
    """Replace the tower's forward on the instance by a wrapper recording each batch size."""
    calls: list[int] = []
    plain = tower.forward

    def counting(texts):
        calls.append(len(texts))
        return plain(texts)

    tower.forward = counting
    return calls


def test_cached_features_equal_the_towers_and_each_text_is_encoded_once():
    model = _frozen_tiny_model().eval()
    tower = model.tower(View.TEXT)
    with torch.no_grad():
        expected = tower(TEXTS)
    calls = _count_tower_calls(tower)
    with cached_frozen_text_tower(model, chunk_size=4) as active:
        assert active
        first = tower(TEXTS[:6])
        again = tower(TEXTS)  # 6 known + 4 unseen texts
    assert calls == [4, 2, 4]  # unseen texts only, in chunks of at most 4
    torch.testing.assert_close(first, expected[:6], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, expected, atol=1e-5, rtol=1e-5)


def test_a_shared_store_serves_a_second_model_without_encoding():
    store: dict[str, torch.Tensor] = {}
    first = _frozen_tiny_model()
    with cached_frozen_text_tower(first, store):
        reference = first.tower(View.TEXT)(TEXTS)
    assert set(store) == set(TEXTS)
    second = _frozen_tiny_model()
    calls = _count_tower_calls(second.tower(View.TEXT))
    with cached_frozen_text_tower(second, store):
        served = second.tower(View.TEXT)(TEXTS[::-1])
    assert calls == []
    torch.testing.assert_close(served, reference.flip(0))


def test_a_trainable_text_tower_is_not_cached():
    model = create_model("tiny", views=["satellite", "text"])
    store: dict[str, torch.Tensor] = {}
    with cached_frozen_text_tower(model, store) as active:
        model.tower(View.TEXT)(TEXTS[:3])
    assert not active and store == {}
