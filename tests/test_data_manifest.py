"""ManifestDataset + collate: missing views, unreadable files, odd image modes and sizes."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from geobridge.data.manifest import ManifestDataset, collate, default_transform
from geobridge.records import Location, write_manifest
from geobridge.views import View

VIEWS = [View.DRONE, View.SATELLITE, View.TEXT]


@pytest.fixture()
def manifest(tmp_path):
    """Four locations: one lacks its satellite view, one has a corrupt drone file, one a
    greyscale 50x30 drone image, one a palette satellite image."""

    def save(image: Image.Image, name: str):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return path

    rgb = Image.fromarray(np.full((32, 32, 3), 200, np.uint8))
    textured = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    corrupt = tmp_path / "train" / "drone" / "b.png"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    locations = [
        Location(
            "a",
            60.0,
            24.0,
            "train",
            text="a bridge",
            paths={"drone": save(rgb, "train/drone/a.png"), "satellite": None},
        ),
        Location(
            "b",
            60.1,
            24.0,
            "train",
            text="a park",
            paths={"drone": corrupt, "satellite": save(rgb, "train/satellite/b.png")},
        ),
        Location(
            "c",
            60.2,
            24.0,
            "train",
            text="a river",
            paths={
                "drone": save(Image.new("L", (50, 30), 90), "train/drone/c.png"),
                "satellite": save(rgb.convert("P"), "train/satellite/c.png"),
            },
        ),
        Location(
            "d",
            60.3,
            24.0,
            "test",
            text="a tower",
            paths={
                "drone": save(rgb, "test/drone/d.png"),
                "satellite": save(textured, "test/satellite/d.png"),
            },
        ),
    ]
    return write_manifest(locations, tmp_path / "manifest.parquet")


def make_dataset(manifest, split="train"):
    transforms = {View.DRONE: default_transform(16), View.SATELLITE: default_transform(16)}
    return ManifestDataset(manifest, split, VIEWS, transforms)


def test_missing_and_unreadable_views_become_masked_zeros(manifest, caplog):
    dataset = make_dataset(manifest)
    assert [loc.id for loc in dataset.locations] == ["a", "b", "c"]  # split filter
    with caplog.at_level(logging.WARNING):
        batch = collate([dataset[i] for i in range(len(dataset))])
    assert batch["ids"] == ["a", "b", "c"]
    assert batch["index"].tolist() == [0, 1, 2]
    assert batch["mask"][View.DRONE].tolist() == [True, False, True]  # b's drone file is corrupt
    assert batch["mask"][View.SATELLITE].tolist() == [False, True, True]  # a has no satellite
    assert torch.count_nonzero(batch[View.DRONE][1]) == 0
    assert torch.count_nonzero(batch[View.SATELLITE][0]) == 0
    assert batch[View.TEXT] == ["a bridge", "a park", "a river"]
    # the corrupt file is counted and named once, not raised
    assert len(dataset.unreadable) == 1 and next(iter(dataset.unreadable)).endswith("b.png")
    assert "b.png" in caplog.text
    dataset[1]
    assert caplog.text.count("b.png") == 1


def test_wrong_mode_and_size_are_converted(manifest):
    dataset = make_dataset(manifest)
    item = dataset[2]  # greyscale 50x30 drone, palette satellite
    assert item[View.DRONE].shape == (3, 16, 16)
    assert item[View.SATELLITE].shape == (3, 16, 16)
    assert torch.allclose(item[View.DRONE][0], item[View.DRONE][2])  # grey replicated to RGB
    assert item[View.DRONE].max() == pytest.approx(90 / 255, abs=1e-3)


def test_joint_augment_is_deterministic_per_epoch_and_index(manifest):
    from geobridge.data.transforms import JointAugment

    transforms = {View.DRONE: default_transform(16), View.SATELLITE: default_transform(16)}
    dataset = ManifestDataset(
        manifest, "test", VIEWS, transforms, joint_augment=JointAugment(0.5, 0.5), seed=3
    )
    draws = []
    for epoch in range(6):
        dataset.set_epoch(epoch)
        first, again = dataset[0], dataset[0]
        assert torch.equal(first[View.SATELLITE], again[View.SATELLITE])  # same (seed, epoch, index)
        draws.append(first[View.SATELLITE])
    assert any(not torch.equal(draws[0], d) for d in draws[1:])  # ... but it changes across epochs


def test_random_per_view_transforms_are_seeded_per_item_not_by_the_global_rng(manifest):
    """ColorJitter draws from torch's global RNG; the dataset seeds it per (seed, epoch, index),
    so an item is the same whatever ran before it (another worker, process, or a resumed run)
    and the caller's RNG stream is left as it was."""
    from torchvision import transforms as T

    def jittered(image):
        return T.ToTensor()(
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)(image.convert("RGB").resize((16, 16)))
        )

    dataset = ManifestDataset(
        manifest, "test", VIEWS, {View.DRONE: jittered, View.SATELLITE: jittered}, seed=3
    )
    torch.manual_seed(0)
    first = dataset[0][View.SATELLITE]
    after_first = torch.rand(1)
    torch.manual_seed(12345)
    torch.rand(17)
    again = dataset[0][View.SATELLITE]
    assert torch.equal(first, again)
    torch.manual_seed(0)
    dataset[0]
    assert torch.equal(torch.rand(1), after_first)  # the global stream is untouched
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0][View.SATELLITE], first)  # a new epoch, new draws
    other_seed = ManifestDataset(
        manifest, "test", VIEWS, {View.DRONE: jittered, View.SATELLITE: jittered}, seed=4
    )
    assert not torch.equal(other_seed[0][View.SATELLITE], first)


def test_empty_split_and_missing_transform_are_explained(manifest):
    with pytest.raises(ValueError, match="no locations in split 'val'"):
        make_dataset(manifest, split="val")
    with pytest.raises(ValueError, match="no transform given for view"):
        ManifestDataset(manifest, "train", [View.STREET], {})
