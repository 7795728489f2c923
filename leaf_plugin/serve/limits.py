"""The server's limits, and the error every bad request gets: an HTTP status and one line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

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
