"""Stage 3 quality gates: pure functions of a grey image, each giving a score.

- blur: variance of the Laplacian (low = out of focus or motion-blurred);
- weak edges: contrast, the standard deviation of grey levels (low = haze, flat light);
- uninformative texture: Shannon entropy of the grey histogram in bits (low = sky, water,
  blank fields);
- partial cloud: the fraction of the area that is bright and locally flat (cloud, haze banks);
  a crop can be sharp and contrasted elsewhere yet be mostly under cloud.

A crop passes a gate when its score reaches the gate's minimum (for cloud: stays at or under the
maximum) from the config; the scores are written to the manifest so thresholds can be re-tuned
without recomputing anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geobridge.builder.config import GateSettings

GATE_NAMES: tuple[str, ...] = ("blur", "contrast", "entropy", "cloud")
CLOUD_GREY_MIN = 190  # grey level (0..255) from which a flat area reads as cloud
CLOUD_STD_MAX = 6.0  # local standard deviation of grey levels under which an area is flat
CLOUD_WINDOW_FRACTION = 1 / 24  # local window side, as a fraction of the shorter image side


@dataclass(frozen=True)
class GateScores:
    """The gate scores of one image."""

    blur: float
    contrast: float
    entropy: float
    cloud: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def to_grey(image: np.ndarray) -> np.ndarray:
    """uint8 grey image from an (H,W) or (H,W,3) RGB array."""
    import cv2

    if image.ndim == 2:
        return image.astype(np.uint8, copy=False)
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def blur_score(grey: np.ndarray) -> float:
    """Variance of the Laplacian: how much fine detail the image holds."""
    import cv2

    # int16 holds the 3x3 Laplacian of uint8 exactly (-1020..1020); meanStdDev avoids temporaries
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S, ksize=1))
    return float(std[0, 0]) ** 2


def contrast_score(grey: np.ndarray) -> float:
    """RMS contrast: standard deviation of grey levels on the 0..255 scale."""
    import cv2

    _, std = cv2.meanStdDev(grey)
    return float(std[0, 0])


def entropy_score(grey: np.ndarray) -> float:
    """Shannon entropy (bits) of the 256-bin grey-level histogram; 8 is the maximum."""
    import cv2

    hist = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def cloud_fraction(grey: np.ndarray) -> float:
    """Fraction (0..1) of the image that is bright and flat in a local window: cloud cover."""
    import cv2

    side = max(3, int(min(grey.shape[:2]) * CLOUD_WINDOW_FRACTION) | 1)
    values = grey.astype(np.float32)
    mean = cv2.blur(values, (side, side))
    variance = cv2.blur(values * values, (side, side)) - mean * mean
    cloudy = (mean >= CLOUD_GREY_MIN) & (variance <= CLOUD_STD_MAX**2)
    return float(cloudy.mean())


def _scores(grey: np.ndarray) -> GateScores:
    return GateScores(
        blur=blur_score(grey),
        contrast=contrast_score(grey),
        entropy=entropy_score(grey),
        cloud=cloud_fraction(grey),
    )


def score_image(image: np.ndarray) -> GateScores:
    """All gate scores of an RGB or grey image."""
    return _scores(to_grey(image))


def score_file(path: str | Path) -> GateScores:
    """Decode an image file straight to grey and score it (the fast path used by the pipeline).

    Only the build's own crops (``crop.size_px`` square PNGs it wrote) come here, so OpenCV decodes
    them directly instead of going through :mod:`geobridge.images`."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot decode image {path}")
    return _scores(grey)


def score_files(paths: list, workers: int = 2) -> list:
    """Score many files in a thread pool (OpenCV releases the GIL while decoding and filtering).

    Returns, per path, its `GateScores` or the exception that made it unreadable."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path):
        try:
            return score_file(path)
        except (OSError, ValueError) as err:
            return err

    if workers <= 1 or len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, paths))


def failed_gates(scores: GateScores, settings: GateSettings) -> list[str]:
    """Names of the gates a crop fails (empty = it passes them all)."""
    failed = []
    if scores.blur < settings.blur_min:
        failed.append("blur")
    if scores.contrast < settings.contrast_min:
        failed.append("contrast")
    if scores.entropy < settings.entropy_min:
        failed.append("entropy")
    if scores.cloud > settings.cloud_max:
        failed.append("cloud")
    return failed


def failure_reason(scores: GateScores, settings: GateSettings) -> str:
    """Why a crop fails, score against threshold per failed gate (empty when it passes)."""
    parts = []
    for gate in failed_gates(scores, settings):
        if gate == "cloud":
            parts.append(f"cloud {100 * scores.cloud:.0f}% of the area > {100 * settings.cloud_max:g}%")
        else:
            parts.append(f"{gate} {getattr(scores, gate):.2f} < {getattr(settings, gate + '_min'):g}")
    return ", ".join(parts)
