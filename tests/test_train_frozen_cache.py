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


def test_a_nested_cache_keeps_the_outer_one_and_leaves_the_tower_as_it_found_it():
    model = _frozen_tiny_model().eval()
    tower = model.tower(View.TEXT)
    calls = _count_tower_calls(tower)
    counting = tower.forward
    store: dict[str, torch.Tensor] = {}
    with cached_frozen_text_tower(model, store) as outer:
        tower(TEXTS[:3])
        with cached_frozen_text_tower(model, {}) as inner:  # e.g. a validation hook inside training
            assert outer and inner
            tower(TEXTS[:3])  # served by the outer store: nothing encoded again
        tower(TEXTS[:3])  # the outer cache is still in place after the inner one closed
    assert calls == [3]
    assert set(store) == set(TEXTS[:3])
    assert tower.forward is counting  # the instance-level forward found on entry is put back


def test_a_trainable_text_tower_is_not_cached():
    model = create_model("tiny", views=["satellite", "text"])
    store: dict[str, torch.Tensor] = {}
    with cached_frozen_text_tower(model, store) as active:
        model.tower(View.TEXT)(TEXTS[:3])
    assert not active and store == {}


def test_a_tower_frozen_below_its_last_block_caches_the_states_entering_it():
    """MiniLM with only its last layer trainable (the paper fine-tunes the last layers): the
    cached path gives the tower's own embeddings, trains that layer, and encodes each text's
    frozen part once."""
    from geobridge.train.frozen_cache import first_trainable_block

    model = create_model("demo", views=["satellite", "text"])
    tower = model.tower(View.TEXT)
    tower.requires_grad_(False)
    last = tower.blocks()[-1]
    last.requires_grad_(True)
    assert first_trainable_block(tower) == len(tower.blocks()) - 1
    tower.eval()  # no dropout: the two paths must agree exactly
    with torch.no_grad():
        expected = tower(TEXTS)
    encoded: list[int] = []
    plain = tower.states_entering

    def counting(texts, block):
        encoded.append(len(texts))
        return plain(texts, block)

    tower.states_entering = counting
    store: dict = {}
    with cached_frozen_text_tower(model, store) as active:
        assert active
        got = tower(TEXTS)
        again = tower(TEXTS[:4])
    assert encoded == [len(TEXTS)]  # the frozen part ran once per text
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, expected[:4], atol=1e-5, rtol=1e-5)
    got.sum().backward()
    assert all(p.grad is not None for p in last.parameters())
    assert all(p.grad is None for p in tower.blocks()[0].parameters())
    # trainable word embeddings below the blocks: nothing can be cached
    tower._encoder().embeddings.requires_grad_(True)
    assert first_trainable_block(tower) is None
    with cached_frozen_text_tower(model, {}) as active:
        assert not active
