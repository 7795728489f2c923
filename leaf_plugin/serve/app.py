"""The FastAPI app of ``semilearn serve``: the page, the API and its errors.

``POST /api/predict`` runs the deploy pipeline of ``predict --detect_faces`` (detect, crop,
classify: :func:`leaf_plugin.deploy.faces.faces_in`) on one uploaded picture and answers its
:func:`~leaf_plugin.deploy.faces.picture_record`.  Every refused request gets
``{"error": "..."}`` with its status; the server goes on serving after each.

One inference runs at a time, on one thread, behind a bounded queue (:class:`InferenceWorker`):
a request takes a slot before its body is read; with every slot taken (the one being analysed
plus ``queue`` waiting) it is answered 503 at once, with ``Retry-After``.  Memory is then bounded
by the slots times the upload cap, whatever the burst.  Slots are counted on the event loop, so
no lock is needed; the analysis runs on the worker's single thread, in arrival order.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Tuple, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..deploy.boxes import DEFAULT_MARGIN
from ..deploy.detect import DEFAULT_DETECTOR, MIN_FACE
from ..deploy.faces import faces_in, picture_record
from ..deploy.media import MediaError
from ..deploy.models import LoadedModel
from .schema import ErrorBody, Health, ModelInfo, PictureResult
from .upload import FIELD, Limits, RequestError, Upload, decode_picture, parse_upload, read_body

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


STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
LOG = logging.getLogger("leaf_plugin.serve")
ERRORS = {status: {"model": ErrorBody, "description": what} for status, what in (
    (400, "a truncated or damaged picture, a form without the picture, a picture too small to search"),
    (413, "an upload over the byte limit, or a picture over the pixel limit (read from its header)"),
    (415, "not a picture, or not multipart/form-data"),
    (503, "busy: every slot of the queue is taken; see Retry-After"))}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD],
    "properties": {FIELD: {"type": "string", "format": "binary", "description": "one picture"}}}}}}}


class PageFiles(StaticFiles):
    """The page's files, revalidated on every load (a new version of the page is never stale)."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


@dataclass(frozen=True)
class ServeOptions:
    detector: str = DEFAULT_DETECTOR
    margin: float = DEFAULT_MARGIN
    min_face: int = MIN_FACE
    limits: Limits = field(default_factory=Limits)


def error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def analyse(loaded: LoadedModel, opts: ServeOptions, upload: Upload, top: int) -> Tuple[dict, float, float]:
    """(the picture's record, seconds decoding, seconds finding and classifying faces)."""
    start = time.perf_counter()
    picture = decode_picture(upload.data, opts.limits)
    decoded = time.perf_counter()
    try:
        faces, small = faces_in(picture, loaded.predictor, opts.detector, opts.margin, opts.min_face)
    except MediaError as exc:
        raise RequestError(400, str(exc))
    names = loaded.predictor.class_names
    record = picture_record(upload.filename, picture, faces, names, min(top, len(names)), small)
    return record, decoded - start, time.perf_counter() - decoded


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, f"{exc.detail} ({request.method} {request.url.path})", exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(422, f"invalid request ({where})")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        LOG.exception("request %s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the server goes on serving")


def create_app(loaded: LoadedModel, opts: ServeOptions = ServeOptions()) -> FastAPI:
    """The app serving ``loaded`` (loaded once, here, by the caller)."""
    app = FastAPI(title="leaf-plugin serve", version="0.1.0",
                  description="Facial expressions of the faces in a picture (LEAF plug-in for USB).")
    worker = InferenceWorker(opts.limits)
    app.state.worker, app.state.loaded = worker, loaded
    app.router.add_event_handler("shutdown", worker.close)
    add_error_handlers(app)
    info = {**loaded.info, "detector": {"name": opts.detector, "margin": opts.margin, "min_face": opts.min_face},
            "limits": opts.limits.as_dict()}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", response_model=Health)
    async def healthz() -> dict:
        return {"status": "ok", "pending": worker.pending, "capacity": worker.capacity}

    @app.get("/api/model", response_model=ModelInfo)
    async def model() -> dict:
        """The model served: class names, algorithm, file, input size, LEAF gate levels; the limits."""
        return info

    @app.post("/api/predict", response_model=PictureResult, responses=ERRORS, openapi_extra=UPLOAD_BODY)
    async def predict(request: Request, top: int = 3) -> JSONResponse:
        """The faces of one picture (multipart field ``file``), as ``predict --detect_faces --json``."""
        if top < 1:
            raise RequestError(422, f"top is {top}; expected a positive integer")
        start = time.perf_counter()
        async with worker.slot():
            body = await read_body(request.stream(), request.headers.get("content-length"), opts.limits)
            upload = parse_upload(request.headers.get("content-type", ""), body, opts.limits)
            del body
            record, decode_s, infer_s = await worker.run(analyse, loaded, opts, upload, top)
        timing = f"decode;dur={1000 * decode_s:.1f}, faces;dur={1000 * infer_s:.1f}, " \
                 f"total;dur={1000 * (time.perf_counter() - start):.1f}"
        return JSONResponse(record, headers={"Server-Timing": timing})

    app.mount("/static", PageFiles(directory=STATIC), name="static")
    return app
