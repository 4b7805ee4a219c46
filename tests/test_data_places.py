"""Training places -> the items of an epoch, and source-weighted batches of a mixture."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import pytest

from geobridge.data.places import TrainingPlace, epoch_view, expand_places
from geobridge.data.samplers import ModalityBalancedBatchSampler
from geobridge.data.sources import SourceSpec, training_items
from geobridge.views import View

D, P, S, T = View.DRONE, View.STREET, View.SATELLITE, View.TEXT


def place(ident: str, drones: int, streets: int, satellite: bool = True, **kw) -> TrainingPlace:
    images = {
        D: tuple(Path(f"{ident}/d{i}.jpg") for i in range(drones)),
        P: tuple(Path(f"{ident}/p{i}.jpg") for i in range(streets)),
    }
    if satellite:
        images[S] = (Path(f"{ident}/s.jpg"),)
    return TrainingPlace(id=ident, images=images, **kw)


def test_an_epoch_runs_over_the_drone_images_and_cycles_the_other_views():
    places = [place("a", drones=5, streets=2), place("b", drones=3, streets=0)]
    assert epoch_view(places, [D, P, S]) is D
    items = expand_places(places, [D, P, S], source="u1652")
    assert [loc.id for loc in items] == ["a"] * 5 + ["b"] * 3
    a = [loc for loc in items if loc.id == "a"]
    assert [loc.path(D).name for loc in a] == [f"d{i}.jpg" for i in range(5)]
    assert [loc.path(P).name for loc in a] == ["p0.jpg", "p1.jpg", "p0.jpg", "p1.jpg", "p0.jpg"]
    assert {loc.path(S).name for loc in items} == {"s.jpg"}
    b = [loc for loc in items if loc.id == "b"]
    assert all(loc.path(P) is None and not loc.has(P) for loc in b)  # a missing view is masked, not imputed
    assert all(loc.region == "u1652" and math.isnan(loc.lat) for loc in items)


def test_the_requested_views_choose_the_epoch_view_and_empty_places_are_left_out():
    places = [place("a", drones=4, streets=3), place("c", drones=0, streets=0, satellite=False)]
    items = expand_places(places, [P, S])
    assert [loc.path(P).name for loc in items] == ["p0.jpg", "p1.jpg", "p2.jpg"]  # street leads without drone
    assert all(loc.path(D) is None for loc in items)
    one_each = [
        TrainingPlace(id=str(i), images={S: (Path(f"{i}.png"),), P: (Path(f"{i}.jpg"),)}) for i in range(3)
    ]
    assert epoch_view(one_each, [P, S]) is None
    assert len(expand_places(one_each, [P, S])) == 3


def test_a_caption_goes_with_the_image_it_was_written_for():
    a = place(
        "a",
        drones=2,
        streets=0,
        text="the building",
        image_texts={Path("a/d1.jpg"): "caption of d1", Path("a/s.jpg"): "caption of the satellite"},
    )
    items = expand_places([a], [D, S, T])
    assert [loc.text for loc in items] == ["caption of the satellite", "caption of d1"]
    # without a caption of the item's images the place's text is used
    b = place("b", drones=2, streets=0, text="the building")
    assert [loc.text for loc in expand_places([b], [D, S, T])] == ["the building", "the building"]


def test_a_source_is_a_manifest_or_a_dataset_with_its_root():
    with pytest.raises(ValueError, match="either a manifest or a dataset"):
        SourceSpec()
    with pytest.raises(ValueError, match="needs its root folder: set data.root=DIR"):
        training_items(SourceSpec(dataset="vigor"), ["street", "satellite"])
    assert SourceSpec(manifest="out/world/manifest.parquet").label == "world"
    assert SourceSpec(dataset="vigor", root="V", name="pano").label == "pano"


def test_weighted_sources_get_their_share_of_every_batch():
    keys = [f"u{i}" for i in range(40)] + [f"v{i}" for i in range(20)]
    groups = ["u1652"] * 40 + ["vigor"] * 20
    sampler = ModalityBalancedBatchSampler(
        keys, 6, groups=groups, weights={"u1652": 2.0, "vigor": 1.0}, seed=3
    )
    for batch in sampler.global_batches(0):
        assert collections.Counter(groups[i] for i in batch) == {"u1652": 4, "vigor": 2}
        assert len({keys[i] for i in batch}) == 6
    # shares that are not whole slots are carried over: exact over the epoch, within one per batch
    odd = ModalityBalancedBatchSampler(keys, 4, groups=groups, weights={"u1652": 1.0, "vigor": 2.0}, seed=3)
    counts = [collections.Counter(groups[i] for i in b) for b in odd.global_batches(0)]
    assert sum(c["vigor"] for c in counts[:3]) == 8 and sum(c["u1652"] for c in counts[:3]) == 4
    assert all(c["vigor"] in (2, 3) for c in counts)
    with pytest.raises(ValueError, match="weights must name exactly the groups.*missing: \\['vigor'\\]"):
        ModalityBalancedBatchSampler(keys, 6, groups=groups, weights={"u1652": 1.0})
