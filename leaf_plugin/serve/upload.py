"""An upload, from bytes to picture: the server's limits, the body read under its cap, the
``multipart/form-data`` parsed in memory, the picture decoded after its header is checked.

Starlette's own form parser spools files over 1 MB to a temporary file; this one keeps the
(capped) body in memory, so nothing a client sends is written to disk.  A picture's dimensions
come from its header (``PIL.Image.open`` reads no pixel data), so a decompression bomb is
refused (413) before a byte of it is decompressed.  Every refusal is a :class:`RequestError`:
an HTTP status and one line.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import AsyncIterator, Dict, List, Optional

import numpy as np

from ..deploy.media import upright_rgb
from ..imagefiles import one_line

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one request may bring, and how many may wait for the model."""

    max_bytes: int = 20 * MB  # the uploaded file
    max_pixels: int = 40_000_000  # width x height, read from the header before decoding
    queue: int = 8  # requests waiting behind the one being analysed; more get 503
    retry_after: int = 1  # seconds, in the 503's Retry-After header

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.queue < 0 or self.retry_after <= 0:
            raise ValueError(f"limits {self}: expected positive sizes and a queue of 0 or more")

    def as_dict(self) -> dict:
        return {"max_upload_bytes": self.max_bytes, "max_pixels": self.max_pixels, "queue": self.queue}


class RequestError(Exception):
    """A request the server refuses: answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


# ---- the body and its form ---------------------------------------------------------------------
FIELD = "file"  # the form field that holds the picture
FORM_OVERHEAD = 64 * 1024  # the form's own bytes (boundaries, part headers) allowed beside the file
ACCEPTED_TYPES = ("image/", "application/octet-stream")


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


async def read_body(chunks: AsyncIterator[bytes], content_length: Optional[str], limits: Limits) -> bytes:
    """The whole body, or 413 as soon as it (or its announced Content-Length) is over the cap."""
    cap = limits.max_bytes + FORM_OVERHEAD
    too_big = f"upload over the limit of {limits.max_bytes:,} bytes; expected a smaller picture"
    if content_length is not None and content_length.isdigit() and int(content_length) > cap:
        raise RequestError(413, f"{too_big} (Content-Length {int(content_length):,})")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise RequestError(413, too_big)
    return bytes(body)


def form_parts(boundary: bytes, body: bytes) -> List[Dict[str, object]]:
    """Each part of a multipart body: ``{"headers": {name: value}, "data": bytes}``."""
    from python_multipart.multipart import MultipartParser

    parts: List[Dict[str, object]] = []
    header: Dict[str, bytearray] = {}

    def begin() -> None:
        parts.append({"headers": {}, "data": bytearray()})
        header.update(field=bytearray(), value=bytearray())

    def header_end() -> None:
        parts[-1]["headers"][header["field"].decode("latin-1").lower()] = header["value"].decode("latin-1")
        header.update(field=bytearray(), value=bytearray())

    callbacks = {"on_part_begin": begin, "on_header_end": header_end,
                 "on_header_field": lambda d, s, e: header["field"].extend(d[s:e]),
                 "on_header_value": lambda d, s, e: header["value"].extend(d[s:e]),
                 "on_part_data": lambda d, s, e: parts[-1]["data"].extend(d[s:e])}
    parser = MultipartParser(boundary, callbacks)
    parser.write(body)
    parser.finalize()
    return parts


def parse_upload(content_type: str, body: bytes, limits: Limits) -> Upload:
    """The picture of a ``multipart/form-data`` body (field ``file``); RequestError naming what is wrong."""
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise RequestError(415, f"request body is {kind.decode('latin-1') or 'of no type'}; expected "
                                f"multipart/form-data with the picture in field '{FIELD}'")
    if not params.get(b"boundary"):
        raise RequestError(400, "multipart/form-data without a boundary; expected a form as browsers and "
                                "curl -F send it")
    try:
        parts = form_parts(params[b"boundary"], body)
    except Exception as exc:  # python-multipart's MultipartParseError and friends
        raise RequestError(400, f"the form cannot be parsed ({type(exc).__name__}); expected multipart/form-data "
                                f"with the picture in field '{FIELD}'")
    for part in parts:
        disposition, fields = parse_options_header(part["headers"].get("content-disposition", ""))
        if fields.get(b"name", b"").decode("latin-1") != FIELD:
            continue
        part_type = part["headers"].get("content-type", "application/octet-stream").strip().lower()
        if not part_type.startswith(ACCEPTED_TYPES):
            raise RequestError(415, f"field '{FIELD}' is {part_type}; expected a picture (image/*)")
        data = bytes(part["data"])
        if len(data) > limits.max_bytes:
            raise RequestError(413, f"upload is {len(data):,} bytes; expected at most {limits.max_bytes:,} bytes")
        name = fields.get(b"filename", b"upload").decode("utf-8", "replace") or "upload"
        return Upload(name, part_type, data)
    raise RequestError(400, f"the form has no field '{FIELD}'; expected the picture in field '{FIELD}'")


# ---- the picture ---------------------------------------------------------------------------------
FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"


def open_header(data: bytes, limits: Limits):
    """The PIL image of ``data``, its pixels not decoded yet; RequestError for a file that is not
    a picture (415) or whose dimensions are over the limit (413)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise RequestError(400, "the uploaded file is empty; expected a picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # over twice PIL's own limit: refused by PIL's header check
        raise RequestError(413, f"picture too large ({one_line(exc).rstrip('.')}; read from its header, not "
                                f"decoded); expected at most {limits.max_pixels:,} pixels")
    except UnidentifiedImageError:
        raise RequestError(415, f"the uploaded file is not a picture (it starts with {data[:8]!r}); expected "
                                f"{FORMATS}")
    except Exception as exc:  # a header PIL recognises but cannot parse
        raise RequestError(400, f"the picture's header is damaged ({type(exc).__name__}: {one_line(exc)}); "
                                f"expected a complete {FORMATS} file")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise RequestError(413, f"picture is {width}x{height} px ({width * height:,} pixels, read from its header, "
                                f"not decoded); expected at most {limits.max_pixels:,} pixels")
    return img


def decode_picture(data: bytes, limits: Limits) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of an uploaded picture, upright; RequestError naming what is wrong."""
    img = open_header(data, limits)
    try:
        return upright_rgb(img)
    except Exception as exc:  # OSError "image file is truncated", SyntaxError "broken PNG file", ...
        raise RequestError(400, f"the picture is truncated or damaged ({type(exc).__name__}: {one_line(exc)}); "
                                f"expected a complete {img.format or 'picture'} file")
    finally:
        img.close()
