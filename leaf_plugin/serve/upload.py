"""The request body, read under a size cap, and its ``multipart/form-data`` parsed in memory.

Starlette's own form parser spools files over 1 MB to a temporary file; this one keeps the
(capped) body in memory, so nothing a client sends is written to disk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Dict, List, Optional

from .limits import Limits, RequestError

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
