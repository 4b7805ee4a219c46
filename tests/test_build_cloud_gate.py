"""The partial-cloud gate: a crop that is sharp and contrasted where it is clear but 40-90 %
under cloud used to pass every gate; now its cloud fraction is scored and checked against
``gates.cloud_max``, and the rejection says so."""

from __future__ import annotations

import numpy as np
import pytest

from geobridge.builder.config import GateSettings, parse_build_config
from geobridge.builder.gates import cloud_fraction, failed_gates, failure_reason, score_image, to_grey


def ground(size: int = 256, seed: int = 0) -> np.ndarray:
    """A textured aerial-like crop: blocks of mid-grey roofs and fields with fine detail."""
    import cv2

    rng = np.random.default_rng(seed)
    blocks = cv2.resize(
        rng.integers(40, 170, (16, 16, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST
    )
    detail = rng.normal(0, 18, (size, size, 3))
    return np.clip(blocks + detail, 0, 255).astype(np.uint8)


def clouded(fraction: float, size: int = 256) -> np.ndarray:
    """``ground`` with its left ``fraction`` of columns under a bright, smooth cloud with a soft edge."""
    import cv2

    image = ground(size).astype(np.float32)
    mask = np.zeros((size, size), np.float32)
    mask[:, : int(round(fraction * size))] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 3)[..., None]
    cloud = np.full_like(image, 238.0) + np.linspace(-6, 6, size, dtype=np.float32)[None, :, None]
    return np.clip(image * (1 - mask) + cloud * mask, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("fraction", [0.0, 0.4, 0.9])
def test_cloud_fraction_measures_the_clouded_area(fraction):
    assert cloud_fraction(to_grey(clouded(fraction))) == pytest.approx(fraction, abs=0.05)


def test_crops_over_the_configured_cloud_fraction_are_rejected_with_their_reason():
    settings = GateSettings()  # defaults: cloud_max 0.25
    clear, partly, overcast = (score_image(clouded(f)) for f in (0.0, 0.4, 0.9))
    assert failed_gates(clear, settings) == []
    # the clouded crops still pass the three older gates: only the cloud gate catches them
    assert failed_gates(partly, settings) == ["cloud"]
    assert failed_gates(overcast, settings) == ["cloud"]
    assert failure_reason(partly, settings) == f"cloud {100 * partly.cloud:.0f}% of the area > 25%"
    assert failure_reason(clear, settings) == ""
    lenient = GateSettings(cloud_max=0.5)
    assert failed_gates(partly, lenient) == [] and failed_gates(overcast, lenient) == ["cloud"]


def test_bright_textured_ground_is_not_cloud():
    """White roofs and concrete with texture are bright but not flat: they do not count."""
    rng = np.random.default_rng(3)
    bright = np.clip(215 + rng.normal(0, 20, (128, 128, 3)), 0, 255).astype(np.uint8)
    assert cloud_fraction(to_grey(bright)) < 0.05


def test_cloud_max_is_a_build_config_key():
    import yaml

    from geobridge.configs import resolve_config

    raw = yaml.safe_load(open(resolve_config("build-world"), encoding="utf-8"))
    raw["gates"]["cloud_max"] = 0.4
    assert parse_build_config(raw).gates.cloud_max == 0.4
    raw["gates"]["cloud_max"] = 1.5
    with pytest.raises(Exception, match="cloud_max"):
        parse_build_config(raw)
