"""Recognising encoded images by their first bytes, so a server's HTML error page or a truncated
file is reported as what it is instead of crashing a decoder."""

from __future__ import annotations

import numpy as np

from geobridge.builder.providers.base import ProviderError
from geobridge.images import ImageError, open_image

_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}


def image_kind(data: bytes) -> str | None:
    """'png', 'jpeg', 'webp', 'gif', 'tiff' from the magic bytes, or None when not an image."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head


def describe_non_image(data: bytes, content_type: str | None = None) -> str:
    """Why ``data`` is not an image, in words fit for the report."""
    if looks_like_html(data):
        return f"server returned an HTML page instead of an image (content-type {content_type or 'unknown'})"
    if not data:
        return "server returned an empty body instead of an image"
    return f"server returned {len(data)} bytes that are not a PNG/JPEG/WebP image (content-type {content_type or 'unknown'})"


def decode_rgb(data: bytes, what: str = "image", max_side: int | None = None) -> np.ndarray:
    """(H,W,3) uint8 RGB from encoded bytes under the image policy (:mod:`geobridge.images`: pixel
    budget, large JPEGs decoded at a reduced scale, at most ``max_side`` pixels a side);
    `ProviderError` when it is not a decodable image or declares too many pixels."""
    if image_kind(data) is None:
        raise ProviderError(f"{what}: {describe_non_image(data)}")
    try:
        return np.asarray(open_image(data, max_side=max_side, name=what))
    except ImageError as err:
        raise ProviderError(str(err)) from None
