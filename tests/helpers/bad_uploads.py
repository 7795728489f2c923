"""Requests ``semilearn serve`` must refuse, sized against its limits: for the API tests and the
bad-request burst of ``benchmarks/serve_load.py``.  Each is ``(name, httpx keyword arguments of a
POST to /api/predict, status, words its error must hold)``."""
from __future__ import annotations

import io
import zlib
from typing import List, Tuple

import numpy as np


def png_bytes(picture: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(picture).save(out, format=fmt)
    return out.getvalue()


def png_bomb(side: int) -> bytes:
    """A real decompression bomb: a grey ``side x side`` PNG of zeros (a few hundred KB that
    decode to ``side**2`` bytes, three times that as RGB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    row = b"\x00" * (side + 1)  # filter byte, then the pixels
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def form(data: bytes, name: str = "x.png", content_type: str = "image/png") -> dict:
    return {"files": {"file": (name, data, content_type)}}


def bad_requests(max_bytes: int, max_pixels: int) -> List[Tuple[str, dict, int, List[str]]]:
    """One request of each kind the server refuses, for a server with these limits."""
    good = png_bytes(np.full((64, 64, 3), 90, np.uint8))
    jpeg = png_bytes(np.random.default_rng(0).integers(0, 256, (300, 300, 3), np.uint8), "JPEG")
    side = int(max_pixels ** 0.5) + 1  # a blank picture just over the pixel limit: a few KB
    wide = png_bytes(np.zeros((side, side + 1, 1), np.uint8).squeeze(-1))
    bomb = 3 * side
    big = np.random.default_rng(1).integers(0, 256, max_bytes + 1000, np.uint8).tobytes()
    return [
        ("not an image", form(b"hello, I am text", "notes.png"), 415, ["not a picture", "expected JPEG"]),
        ("truncated PNG", form(good[:len(good) // 2]), 400, ["truncated", "expected a complete PNG"]),
        ("truncated JPEG", form(jpeg[:len(jpeg) // 3], "x.jpg", "image/jpeg"), 400, ["truncated", "JPEG"]),
        ("empty file", form(b""), 400, ["empty"]),
        ("too many bytes", form(big), 413, [f"{max_bytes:,} bytes"]),
        ("too many pixels", form(wide), 413, [f"{side + 1}x{side}", f"{max_pixels:,} pixels"]),
        ("decompression bomb", form(png_bomb(bomb)), 413, ["not decoded", f"{max_pixels:,} pixels"]),
        ("JSON body", {"json": {"file": "x"}}, 415, ["application/json", "multipart/form-data"]),
        ("text part", form(b"abc", "x.txt", "text/plain"), 415, ["text/plain", "image/*"]),
        ("no file field", {"files": {"picture": ("x.png", good, "image/png")}}, 400, ["no field 'file'"]),
        ("picture too small", form(png_bytes(np.zeros((10, 12, 3), np.uint8))), 400, ["12x10 px", "24 px"]),
    ]
