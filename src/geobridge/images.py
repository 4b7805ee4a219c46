"""One policy for opening image files, used by every command and the service.

An image is opened in two steps. First its header is read and the pixel count it declares is
checked against a budget (``max_pixels``, default :data:`DEFAULT_MAX_PIXELS`, or the
``GEOBRIDGE_MAX_PIXELS`` environment variable), so a "decompression bomb" (a small file that
declares billions of pixels) never allocates. Then it is decoded:

* within the budget, at full resolution (so evaluation sees exactly the file's pixels);
* over the budget, a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8, libjpeg's DCT
  scaling: a 24 or 400 Mpx photo is normal input and costs only the pixels kept); any other
  format would have to allocate every declared pixel first, so it is refused;
* with ``max_side``, the consumer needs no more than that many pixels per side: a JPEG is
  decoded at the smallest scale still at least that large, and the result is reduced to fit.

Every failure is an :class:`ImageError` (a ``ValueError``) naming the file, saying what is wrong
and what to do; PIL's own bomb check (a process-wide setting) is replaced by this per-call one.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PIXELS = 40_000_000  # e.g. 8000 x 5000: any camera's photo, far below a bomb
MAX_PIXELS_ENV = "GEOBRIDGE_MAX_PIXELS"
JPEG_SCALES = (1, 2, 4, 8)  # reductions libjpeg decodes directly

ImageSource = Union[str, Path, bytes]
_HEADER_LOCK = threading.Lock()


class ImageError(ValueError):
    """An image file that cannot be used; ``code`` says why in one word (for HTTP statuses)."""

    def __init__(self, name: str, problem: str, code: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem
        self.code = code  # missing, unreadable, empty, not_an_image, too_many_pixels, corrupt


def default_max_pixels() -> int:
    """The pixel budget: ``$GEOBRIDGE_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{MAX_PIXELS_ENV}={raw!r} is not a number of pixels") from None
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be at least 1, got {raw}")
    return value


def source_name(source: ImageSource, name: str | None = None) -> str:
    """How an image is named in messages: ``name``, else its path, else ``image``."""
    return name or (str(source) if isinstance(source, (str, Path)) else "image")


@contextlib.contextmanager
def image_header(source: ImageSource, name: str | None = None) -> Iterator[Image.Image]:
    """The lazily opened image (header read, no pixels decoded), without PIL's global bomb check;
    failures to open are :class:`ImageError`."""
    from PIL import Image, UnidentifiedImageError

    label = source_name(source, name)
    if isinstance(source, bytes) and not source:
        raise ImageError(label, "is empty (0 bytes); send or copy the whole image file", "empty")
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with _HEADER_LOCK:  # PIL checks a module-wide limit while opening; this call checks its own
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(fp)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except FileNotFoundError:
        raise ImageError(label, "not found; check the path", "missing") from None
    except UnidentifiedImageError:
        if not isinstance(source, bytes) and Path(source).stat().st_size == 0:
            raise ImageError(label, "is empty (0 bytes); copy the whole image file again", "empty") from None
        raise ImageError(
            label, "is not an image PIL can read; give a PNG, JPEG, WebP or TIFF file", "not_an_image"
        ) from None
    except OSError as err:
        raise ImageError(
            label, f"cannot be read ({err.strerror or err}); check the file and its permissions", "unreadable"
        ) from None
    except (ValueError, SyntaxError, EOFError) as err:  # a header PIL recognised but could not parse
        raise ImageError(label, f"has a corrupt header ({err}); copy the file again", "corrupt") from None
    with image:  # closes the file at the end; pixels already loaded stay usable
        yield image


def decode_scale(image: Image.Image, max_pixels: int, max_side: int | None, name: str) -> int:
    """The reduction to decode ``image`` at: 1, or a JPEG scale that fits the budget (and, with
    ``max_side``, the largest one still at least ``max_side`` on the longer side)."""
    width, height = image.size
    scalable = image.format == "JPEG"
    scales = JPEG_SCALES if scalable else (1,)
    fitting = [s for s in scales if math.ceil(width / s) * math.ceil(height / s) <= max_pixels]
    if not fitting:
        how = (
            "even at 1/8 scale"
            if scalable
            else f"and a {image.format or 'file of this format'} cannot be decoded at a reduced scale"
        )
        raise ImageError(
            name,
            f"declares {width} x {height} = {width * height:,} pixels, over the "
            f"{max_pixels:,}-pixel budget (decompression bomb guard) {how}; resize it, "
            f"or raise {MAX_PIXELS_ENV} if it is genuine",
            "too_many_pixels",
        )
    scale = fitting[0]
    if max_side is not None:
        scale = max([scale] + [s for s in fitting if math.ceil(max(width, height) / s) >= max_side])
    return scale


def open_image(
    source: ImageSource,
    max_pixels: int | None = None,
    max_side: int | None = None,
    upright: bool = False,
    name: str | None = None,
) -> Image.Image:
    """Decode ``source`` (a path or encoded bytes) to an RGB image under the policy above.

    ``max_side``: the most pixels per side the caller keeps (the result is reduced to fit);
    ``upright``: apply the EXIF orientation (camera photos)."""
    from PIL import ImageOps

    label = source_name(source, name)
    budget = default_max_pixels() if max_pixels is None else max_pixels
    with image_header(source, name) as image:
        scale = decode_scale(image, budget, max_side, label)
        if scale > 1:
            image.draft("RGB", (image.size[0] // scale, image.size[1] // scale))
        try:
            image.load()
            oriented = ImageOps.exif_transpose(image) if upright else image
            rgb = oriented if oriented.mode == "RGB" else oriented.convert("RGB")  # no copy when RGB
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            raise ImageError(
                label, f"is truncated or corrupt ({err}); copy the whole file again", "corrupt"
            ) from None
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side))
    return rgb
