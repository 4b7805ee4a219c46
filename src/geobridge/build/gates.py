"""Stage 3 quality gates: pure functions of a grey image, each giving a score.

- blur: variance of the Laplacian (low = out of focus or motion-blurred);
- weak edges: contrast, the standard deviation of grey levels (low = haze, flat light);
- uninformative texture: Shannon entropy of the grey histogram in bits (low = sky, water,
  blank fields).

A crop passes a gate when its score reaches the gate's minimum from the config; the scores are
written to the manifest so thresholds can be re-tuned without recomputing anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geobridge.build.config import GateSettings

GATE_NAMES: tuple[str, ...] = ("blur", "contrast", "entropy")


@dataclass(frozen=True)
class GateScores:
    """The three gate scores of one image."""

    blur: float
    contrast: float
    entropy: float

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


def score_image(image: np.ndarray) -> GateScores:
    """All three scores of an RGB or grey image."""
    grey = to_grey(image)
    return GateScores(blur=blur_score(grey), contrast=contrast_score(grey), entropy=entropy_score(grey))


def score_file(path: str | Path) -> GateScores:
    """Decode an image file straight to grey and score it (the fast path used by the pipeline)."""
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    grey = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot decode image {path}")
    return GateScores(blur=blur_score(grey), contrast=contrast_score(grey), entropy=entropy_score(grey))


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
    """Names of the gates a crop fails (empty = it passes all three)."""
    failed = []
    if scores.blur < settings.blur_min:
        failed.append("blur")
    if scores.contrast < settings.contrast_min:
        failed.append("contrast")
    if scores.entropy < settings.entropy_min:
        failed.append("entropy")
    return failed
