"""Checks on what a client sends before any of it reaches the model.

An upload is read in chunks with a hard byte limit (a request announcing more in its
Content-Length is refused before its body is read), kept in memory only, and decoded under the
image policy of :mod:`geobridge.images` (a pixel limit checked from the header before the pixels
are decompressed, so a "decompression bomb" never allocates; a large JPEG decoded at a reduced
scale). Every refusal is an ``UploadError`` carrying the HTTP status and a message that says what
is wrong and what is accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from geobridge.images import ImageError, default_max_pixels, image_header, open_image

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
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
    max_pixels: int = field(default_factory=default_max_pixels)  # $GEOBRIDGE_MAX_PIXELS or 40 Mpx


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
    """Decode bytes into an RGB PIL image under the image policy (:mod:`geobridge.images`: the
    pixel budget is checked from the header; a large JPEG is decoded at a reduced scale), or
    raise UploadError saying why not."""
    if len(data) > limits.max_bytes:
        raise UploadError(413, "too_large", _too_large(len(data), limits))
    try:
        with image_header(data, name) as header:
            if header.format not in ACCEPTED_FORMATS:
                raise UploadError(
                    415,
                    "unsupported_format",
                    f"{name} is {header.format}; accepted: {', '.join(ACCEPTED_FORMATS)}",
                )
        return open_image(data, max_pixels=limits.max_pixels, name=name)
    except ImageError as err:
        status, code, advice = _REFUSALS.get(err.code, (400, "corrupt_image", ""))
        raise UploadError(status, code, f"{err}{advice}") from None


#: ImageError code -> HTTP status, refusal code, what is accepted
_REFUSALS: dict[str, tuple[int, str, str]] = {
    "empty": (400, "empty_image", ""),
    "not_an_image": (415, "not_an_image", f" (accepted: {', '.join(ACCEPTED_FORMATS)})"),
    "too_many_pixels": (413, "too_many_pixels", ""),
}


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
