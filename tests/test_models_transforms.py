"""The view transform (geobridge.models.transforms): the same outputs as the torchvision
composition it replaced (Resize bicubic, ColorJitter 0.2 for training, ToTensor, Normalize),
deterministic under torch's seed, and replayed by ManifestDataset's per-item seeding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from geobridge.data.manifest import ManifestDataset
from geobridge.data.transforms import JointAugment
from geobridge.models.transforms import NormalizedTensor, PhotometricJitter, ViewTransform
from geobridge.records import Location
from geobridge.views import View

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _images() -> list[Image.Image]:
    """Photo-like and saturated images of several sizes and modes (RGB, RGBA, L)."""
    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((80, 60), Image.BICUBIC)
    bright = Image.fromarray(
        (rng.integers(0, 64, (50, 70, 3)) + 192).astype(np.uint8)
    )  # clips when brightened
    noise = Image.fromarray(rng.integers(0, 256, (33, 47, 3), dtype=np.uint8))
    return [smooth, bright, noise, noise.convert("RGBA"), smooth.convert("L")]


def _torchvision(size: tuple[int, int], train: bool) -> T.Compose:
    steps = [
        lambda im: im if im.mode == "RGB" else im.convert("RGB"),
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
    ]
    if train:
        steps.append(T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2))
    return T.Compose(steps + [T.ToTensor(), T.Normalize(MEAN, STD)])


@pytest.mark.parametrize("size", [(24, 24), (16, 40), (60, 80)])
def test_eval_output_equals_totensor_normalize(size):
    ours = ViewTransform(size, MEAN, STD)
    for image in _images():
        out = ours(image)
        assert out.shape == (3, *size) and out.dtype == torch.float32 and out.is_contiguous()
        assert torch.allclose(out, _torchvision(size, train=False)(image), rtol=0, atol=1e-6)


def test_normalized_tensor_equals_totensor_normalize():
    image = _images()[2]
    reference = T.Normalize(MEAN, STD)(T.ToTensor()(image))
    assert torch.allclose(NormalizedTensor(MEAN, STD)(image), reference, rtol=0, atol=1e-6)


def test_train_output_and_rng_stream_equal_colorjitter():
    """Same draws from torch's RNG, same pixels: the seeded stream continues identically."""
    for seed in range(40):
        for image in _images():
            torch.manual_seed(seed)
            reference = _torchvision((20, 28), train=True)(image)
            after_reference = torch.rand(1)
            torch.manual_seed(seed)
            ours = ViewTransform((20, 28), MEAN, STD, jitter=0.2)(image)
            assert torch.allclose(ours, reference, rtol=0, atol=1e-6)
            assert torch.equal(torch.rand(1), after_reference)


def test_jitter_pixels_equal_colorjitter_bit_for_bit():
    image = _images()[0]
    for seed in range(60):  # covers all 24 orders of randperm(4)
        torch.manual_seed(seed)
        reference = np.asarray(T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2)(image))
        torch.manual_seed(seed)
        assert np.array_equal(np.asarray(PhotometricJitter(0.2, 0.2, 0.2)(image)), reference)


def test_train_transform_is_deterministic_under_the_seed_and_varies_without():
    transform = ViewTransform((32, 32), MEAN, STD, jitter=0.2)
    image = _images()[0]
    torch.manual_seed(5)
    first = transform(image)
    torch.manual_seed(5)
    assert torch.equal(transform(image), first)
    assert not torch.equal(transform(image), first)  # the next draws differ


def test_jitter_factors_stay_within_the_colorjitter_ranges():
    jitter = PhotometricJitter(0.2, 0.2, 0.2)
    torch.manual_seed(0)
    orders, factors = zip(*(jitter.draw() for _ in range(500)))
    values = np.array(factors, dtype=float)
    assert values.min() >= 0.8 and values.max() <= 1.2
    assert values.min() < 0.82 and values.max() > 1.18  # the whole range is used
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    # the effect on a mid-grey image: brightness and contrast move it by at most 20%
    torch.manual_seed(1)
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    for _ in range(50):
        pixel = np.asarray(jitter(grey))
        assert 80 - 1 <= pixel.min() and pixel.max() <= 120 + 1


def test_eval_transform_draws_nothing_from_the_rng():
    transform = ViewTransform((16, 16), MEAN, STD)
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    transform(_images()[0])
    assert torch.equal(torch.rand(1), expected)


def test_manifest_item_replays_with_the_train_transform(tmp_path: Path):
    """Same (seed, epoch, index) -> the same tensor, whatever the global RNG did before."""
    paths = []
    for i, image in enumerate(_images()[:3]):
        paths.append(tmp_path / f"{i}.jpg")
        image.save(paths[-1], quality=90)
    locations = [Location(id=f"l{i}", lat=0.0, lon=0.0, paths={"satellite": p}) for i, p in enumerate(paths)]
    transform = ViewTransform((24, 24), MEAN, STD, jitter=0.2)

    def dataset(seed: int) -> ManifestDataset:
        return ManifestDataset(
            locations,
            None,
            [View.SATELLITE],
            {View.SATELLITE: transform},
            seed=seed,
            joint_augment=JointAugment(flip_p=0.5),
        )

    data = dataset(3)
    data.set_epoch(2)
    first = [data[i][View.SATELLITE] for i in range(3)]
    torch.manual_seed(999)
    torch.rand(11)
    resumed = dataset(3)
    resumed.set_epoch(2)
    assert all(torch.equal(resumed[i][View.SATELLITE], first[i]) for i in (2, 0, 1))
    resumed.set_epoch(3)
    assert any(not torch.equal(resumed[i][View.SATELLITE], first[i]) for i in range(3))
