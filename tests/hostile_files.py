"""Bad image files written cheaply, for the hostile-input tests.

``bomb_png``: a valid PNG header declaring 40000 x 40000 pixels with a tiny IDAT (1.6 Gpx declared
in under a kilobyte). ``huge_jpeg``: a real, decodable grey JPEG of any size whose every 8 x 8
block is flat mid-grey, written block by block from its bit pattern (a 20000 x 20000 one is
4.7 MB on disk and was never held in memory). ``truncated`` and ``zero_bytes`` damage a copy.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(path: Path, side: int = 40_000) -> Path:
    """A PNG declaring ``side`` x ``side`` RGB pixels whose pixel data is a few bytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    data += _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def huge_jpeg(path: Path, width: int, height: int) -> Path:
    """A baseline grey JPEG of ``width`` x ``height`` flat mid-grey pixels.

    Each 8 x 8 block codes a DC difference of 0 ("00" in the standard luminance DC table) and an
    end-of-block ("1010" in the AC table): 6 bits, so four blocks are the 3 bytes 28 A2 8A."""
    quant = _segment(0xDB, b"\x00" + bytes([1] * 64))
    frame = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dc_bits = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    ac_bits = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])
    ac_values = bytes.fromhex(
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a"
        "3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a9293"
        "9495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6"
        "e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
    )
    tables = _segment(0xC4, b"\x00" + dc_bits + bytes(range(12)) + b"\x10" + ac_bits + ac_values)
    scan = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    pattern, rest = divmod(blocks, 4)
    bits = "001010" * rest
    n_bytes = -(-len(bits) // 8)
    tail = int(bits.ljust(n_bytes * 8, "1"), 2).to_bytes(n_bytes, "big") if bits else b""  # padded with 1s
    with open(path, "wb") as out:
        out.write(b"\xff\xd8" + quant + frame + tables + scan)
        chunk = b"\x28\xa2\x8a" * 100_000
        for _ in range(pattern // 100_000):
            out.write(chunk)
        out.write(b"\x28\xa2\x8a" * (pattern % 100_000) + tail + b"\xff\xd9")
    return path


def truncated(source: Path, path: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` share of ``source``'s bytes."""
    data = source.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path
