"""``semilearn serve``: a web page and a JSON API that find and classify the faces in pictures.

    semilearn serve                                   (the shipped FERPlus model)
    semilearn serve --load_path RUN_OR_CHECKPOINT [--host 127.0.0.1] [--port 8000]
    semilearn serve --model model.onnx                (an export: onnxruntime, no torch imported)

The model is loaded once, before the port is opened; the console then says which model is
served and where to point the browser.  It binds the loopback interface unless ``--host`` says
otherwise (one warning line then: the server has no authentication).
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from typing import List

from ..errors import UserError
from ..flags import OneLineParser
from ..serve.upload import MB, Limits


def parser() -> OneLineParser:
    from ..deploy.boxes import DEFAULT_MARGIN
    from ..deploy.detect import DEFAULT_DETECTOR, DETECTORS, MIN_FACE

    defaults = Limits()
    p = OneLineParser(prog="semilearn serve",
                      description="Serve a web page and a JSON API (/api/predict, /api/model, /docs) that find the "
                                  "faces in a picture and classify their expressions, with a checkpoint of "
                                  "'semilearn train', a file of 'semilearn export', or the shipped FERPlus model.")
    p.add_argument("--load_path", default=None, help="checkpoint (.pth) of semilearn train, or its run folder")
    p.add_argument("--model", default=None, help="instead of --load_path: a .onnx or TorchScript file of semilearn "
                                                 "export; with neither, the shipped model "
                                                 "benchmarks/checkpoints/ferplus_leaf_fixmatch_s0.onnx")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine "
                                                       "only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free port)")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--data_dir", default=None, help="where a checkpoint's dataset is, when its test-time transform "
                                                    "needs it (default: the run's own --data_dir)")
    faces = p.add_argument_group("faces")
    faces.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS),
                       help=f"face detector (default {DEFAULT_DETECTOR})")
    faces.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                       help=f"added on every side of a face box, as a fraction of its side (default {DEFAULT_MARGIN})")
    faces.add_argument("--min_face", type=int, default=MIN_FACE,
                       help=f"smallest face searched for, in pixels (default {MIN_FACE})")
    limits = p.add_argument_group("limits")
    limits.add_argument("--max_upload_mb", type=float, default=defaults.max_bytes / MB,
                        help=f"largest upload, in MiB (default {defaults.max_bytes / MB:g}; larger: 413)")
    limits.add_argument("--max_pixels", type=int, default=defaults.max_pixels,
                        help=f"largest picture, width x height from its header (default {defaults.max_pixels:,}; "
                             f"larger: 413 before decoding)")
    limits.add_argument("--queue", type=int, default=defaults.queue,
                        help=f"requests that may wait behind the one being analysed (default {defaults.queue}; "
                             f"more: 503 with Retry-After)")
    p.add_argument("--log_level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default warning; info logs every request)")
    return p


def check_options(opts) -> Limits:
    if not 0 <= opts.port <= 65535:
        raise UserError(f"--port is {opts.port}; expected 0..65535")
    if opts.min_face <= 0 or not 0 <= opts.margin <= 2:
        raise UserError(f"--min_face {opts.min_face}, --margin {opts.margin}; expected a positive integer and a "
                        f"margin in 0..2")
    if opts.max_upload_mb <= 0 or opts.max_pixels <= 0 or opts.queue < 0:
        raise UserError(f"--max_upload_mb {opts.max_upload_mb}, --max_pixels {opts.max_pixels}, --queue {opts.queue};"
                        f" expected positive limits and a queue of 0 or more")
    return Limits(max_bytes=int(opts.max_upload_mb * MB), max_pixels=opts.max_pixels, queue=opts.queue)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before the model is loaded (a taken port is one error line at once);
    it listens when the server starts."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); expected a free port (--port) on "
                        f"an interface of this machine (--host)")
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"


def run(argv: List[str]) -> int:
    import uvicorn

    from ..deploy.models import load_model
    from ..serve.app import ServeOptions, create_app

    opts = parser().parse_args(argv)
    limits = check_options(opts)
    sock = bind_socket(opts.host, opts.port)
    try:
        loaded = load_model(opts.load_path, opts.model, opts.device, opts.data_dir, opts.gpu)
    except BaseException:
        sock.close()
        raise
    app = create_app(loaded, ServeOptions(opts.detector, opts.margin, opts.min_face, limits))
    if not is_loopback(opts.host):
        print(f"semilearn serve: warning: listening on {opts.host}, reachable from other machines; the server has "
              f"no authentication and no TLS", file=sys.stderr, flush=True)
    url = url_of(sock, opts.host)
    print(f"semilearn serve: serving {loaded.describe()}", flush=True)
    print(f"semilearn serve: open {url} in a browser (API: {url}docs); Ctrl-C stops", flush=True)
    sock.listen(128)
    config = uvicorn.Config(app, log_level=opts.log_level, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
