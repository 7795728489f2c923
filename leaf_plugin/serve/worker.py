"""One inference at a time, on one thread, behind a bounded queue.

A request takes a slot before its body is read; with every slot taken (the one being analysed
plus ``queue`` waiting) it is answered 503 at once, with ``Retry-After``.  Memory is then bounded
by the slots times the upload cap, whatever the burst.  Slots are counted on the event loop, so
no lock is needed; the analysis runs on the worker's single thread, in arrival order.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, TypeVar

from .limits import Limits, RequestError

T = TypeVar("T")


class InferenceWorker:
    """Admission control (``slot``) and the single inference thread (``run``)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.capacity = limits.queue + 1
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the slots while a request is read and analysed; 503 when none is free."""
        if self.pending >= self.capacity:
            raise RequestError(503, f"busy: {self.pending} requests are being analysed or waiting (the most is "
                                    f"{self.capacity}); expected a retry after {self.limits.retry_after} s",
                               {"Retry-After": str(self.limits.retry_after)})
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def run(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` on the inference thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
