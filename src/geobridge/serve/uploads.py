"""Checks on what a client sends before any of it reaches the model.

An upload is read in chunks with a hard byte limit (a request announcing more in its
Content-Length is refused before its body is read), kept in memory only, and decoded as an image
under a pixel limit that is checked from the header before the pixels are decompressed (so a
"decompression bomb" never allocates). Every refusal is an ``UploadError`` carrying the HTTP
status and a message that says what is wrong and what is accepted.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import AsyncIterator

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000  # e.g. 8000 x 5000; far above any query image
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


@dataclass
class UploadError(Exception):
    """A refused request: HTTP status, a short machine-readable code and a human message."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def check_content_length(header: str | None, limits: UploadLimits) -> None:
    """Refuse early when the announced body is larger than allowed."""
    if header is None:
        return
    try:
        announced = int(header)
    except ValueError:
        raise UploadError(400, "bad_content_length", f"Content-Length {header!r} is not a number") from None
    if announced > limits.max_bytes:
        raise UploadError(413, "too_large", _too_large(announced, limits))


async def read_limited(chunks: AsyncIterator[bytes], limits: UploadLimits) -> bytes:
    """Collect a streamed body, stopping as soon as it exceeds the limit."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > limits.max_bytes:
            raise UploadError(413, "too_large", _too_large(None, limits))
    return bytes(buffer)


def decode_image(data: bytes, limits: UploadLimits, name: str = "upload"):
    """Decode bytes into an RGB PIL image, or raise UploadError saying why not."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(400, "empty_image", f"{name} is empty: send a PNG or JPEG image")
    if len(data) > limits.max_bytes:
        raise UploadError(413, "too_large", _too_large(len(data), limits))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise UploadError(
                    413, "too_many_pixels",
                    f"{name} is {width} x {height} = {width * height:,} pixels, more than the "
                    f"{limits.max_pixels:,} allowed (decompression bomb guard); send a smaller image",
                )
            if image.format not in ACCEPTED_FORMATS:
                raise UploadError(415, "unsupported_format",
                                  f"{name} is {image.format}; accepted: {', '.join(ACCEPTED_FORMATS)}")
            image.load()
            return image.convert("RGB")
    except UploadError:
        raise
    except UnidentifiedImageError:
        raise UploadError(415, "not_an_image",
                          f"{name} is not an image PIL can read; accepted: {', '.join(ACCEPTED_FORMATS)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise UploadError(413, "too_many_pixels", f"{name} is a decompression bomb: {err}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise UploadError(400, "corrupt_image", f"{name} is truncated or corrupt ({err}); send the whole file") from None


def release_memory() -> None:
    """Hand memory freed after a large decode back to the OS (glibc keeps it otherwise)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):  # glibc only
        libc.malloc_trim(0)


def _too_large(size: int | None, limits: UploadLimits) -> str:
    mb = limits.max_bytes / (1024 * 1024)
    what = f"{size / (1024 * 1024):.1f} MB" if size is not None else "more"
    return f"the upload is {what}; at most {mb:.0f} MB is accepted: send a smaller image"
