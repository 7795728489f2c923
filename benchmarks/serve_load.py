"""A bounded load test of ``semilearn serve`` on the loopback interface.

    python benchmarks/serve_load.py [--checkpoint benchmarks/checkpoints/ferplus_leaf_fixmatch_s0.pth]
        [--onnx benchmarks/checkpoints/ferplus_leaf_fixmatch_s0.onnx] [--requests 120] [--duration 60]
        [--clients 1 4 16] [--faces 1 4] [--queue 16] [--out benchmarks/results/serve_load.md] [--note TEXT]

For each backend (the checkpoint through PyTorch, its ONNX export through onnxruntime) a real
server (``semilearn serve``, its own process, a free loopback port, ``--queue`` waiting slots)
answers pictures of 1 and 4 FERPlus faces (``tests/helpers/face_pictures.py``) from 1, 4 and 16
concurrent clients; each cell stops after ``--requests`` requests or ``--duration`` seconds,
whichever comes first.  Then the same burst (16 clients, 4 faces) with every tenth request a
bad one, counting that every good request was answered; then one of each refused request with
its status and message.  Prints the markdown and writes it to ``--out``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
from helpers.bad_uploads import bad_requests, png_bytes  # noqa: E402  (test helpers, not in the package)
from helpers.face_pictures import picture_with_faces  # noqa: E402

SHIPPED = HERE / "checkpoints" / "ferplus_leaf_fixmatch_s0"
BURST_BAD = ("not an image", "truncated PNG", "decompression bomb", "text part", "JSON body")
Sample = Tuple[str, int, float, int]  # (kind, status, seconds, faces found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(flag: str, path: Path, queue: int) -> Tuple[subprocess.Popen, str]:
    """``semilearn serve`` on a free loopback port, once its /healthz answers: (process, URL)."""
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "leaf_plugin.cli", "serve", flag, str(path), "--port", str(port),
                                "--queue", str(queue), "--device", "cpu"], cwd=REPO, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"semilearn serve {flag} {path} exited with code {process.returncode}")
        try:
            if httpx.get(url + "healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"semilearn serve {flag} {path} did not answer in 300 s")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def burst(url: str, requests: Sequence[Tuple[str, dict]], clients: int, duration: float) -> List[Sample]:
    """Send ``requests`` in order from ``clients`` concurrent clients (each takes the next one when
    its answer came), until all are sent or ``duration`` seconds have passed."""
    import httpx

    samples: List[Sample] = []
    next_index = 0
    deadline = time.monotonic() + duration

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < len(requests) and time.monotonic() < deadline:
            kind, kwargs = requests[next_index]
            next_index += 1
            start = time.perf_counter()
            response = await http.post(url + "api/predict", **kwargs)
            faces = response.json().get("num_faces", -1) if response.status_code == 200 else -1
            samples.append((kind, response.status_code, time.perf_counter() - start, faces))

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return samples


def load_row(backend: str, faces: int, clients: int, samples: List[Sample], wall: float) -> str:
    ok = [s for s in samples if s[1] == 200]
    ms = 1000 * np.array([s[2] for s in ok]) if ok else np.array([np.nan])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    wrong = sum(s[3] != faces for s in ok)
    busy = sum(s[1] == 503 for s in samples)
    return (f"| {backend} | {faces} | {clients} | {len(samples)} | {len(ok)} | {busy} | {wrong} | {wall:.1f} | "
            f"{len(ok) / wall:.2f} | {p50:.0f} | {p95:.0f} | {p99:.0f} |")


def measure(url: str, backend: str, pictures: dict, opts) -> List[str]:
    rows = []
    for faces, data in pictures.items():
        good = [("good", {"files": {"file": (f"faces{faces}.png", data, "image/png")}})] * opts.requests
        asyncio.run(burst(url, good[:2], 1, 60))  # warm-up: first-call costs of the backend
        for clients in opts.clients:
            start = time.perf_counter()
            samples = asyncio.run(burst(url, good, clients, opts.duration))
            rows.append(load_row(backend, faces, clients, samples, time.perf_counter() - start))
            print(rows[-1], flush=True)
    return rows


def mixed_burst(url: str, backend: str, data: bytes, opts) -> str:
    """16 clients, every tenth request a bad one: every good one must be answered (200)."""
    bad = {name: (kwargs, status) for name, kwargs, status, _ in bad_requests(opts.max_bytes, opts.max_pixels)}
    requests, expected = [], {}
    for i in range(opts.requests):
        if i % 10 == 9:
            name = BURST_BAD[(i // 10) % len(BURST_BAD)]
            requests.append((name, bad[name][0]))
            expected[name] = bad[name][1]
        else:
            requests.append(("good", {"files": {"file": ("faces4.png", data, "image/png")}}))
    samples = asyncio.run(burst(url, requests, max(opts.clients), opts.duration))
    good = [s for s in samples if s[0] == "good"]
    refused = [s for s in samples if s[0] != "good"]
    right = sum(s[1] == expected[s[0]] for s in refused)
    ms = 1000 * np.array([s[2] for s in good if s[1] == 200])
    return (f"| {backend} | {max(opts.clients)} | {len(good)} | {sum(s[1] == 200 for s in good)} | {len(refused)} | "
            f"{right} | {np.percentile(ms, 50):.0f} | {np.percentile(ms, 95):.0f} |")


def error_table(url: str, opts) -> List[str]:
    import httpx

    rows = []
    for name, kwargs, status, _ in bad_requests(opts.max_bytes, opts.max_pixels):
        response = httpx.post(url + "api/predict", timeout=120, **kwargs)
        message = response.json().get("error", response.text).replace("|", "\\|")
        rows.append(f"| {name} | {response.status_code} | {message} |")
        assert response.status_code == status, (name, response.status_code, message)
    return rows


def shown(path: Path) -> Path:
    """``path`` relative to the repository when it is inside it."""
    return path.resolve().relative_to(REPO) if path.resolve().is_relative_to(REPO) else path


def main(argv=None) -> None:
    from leaf_plugin.serve.upload import Limits

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=SHIPPED.with_suffix(".pth"))
    p.add_argument("--onnx", type=Path, default=SHIPPED.with_suffix(".onnx"))
    p.add_argument("--requests", type=int, default=120, help="requests per cell (default 120)")
    p.add_argument("--duration", type=float, default=60, help="seconds per cell at most (default 60)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--faces", type=int, nargs="+", default=[1, 4])
    p.add_argument("--queue", type=int, default=16, help="the servers' --queue (default 16: no 503 at 16 clients)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "serve_load.md")
    p.add_argument("--note", default="", help="what else ran on the machine, written beside the numbers")
    opts = p.parse_args(argv)
    opts.max_bytes, opts.max_pixels = Limits().max_bytes, Limits().max_pixels
    command = "python " + shlex.join(["benchmarks/serve_load.py", *(argv if argv is not None else sys.argv[1:])])
    pictures = {n: png_bytes(picture_with_faces(n)[0]) for n in opts.faces}
    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows, mixed, errors = [], [], []
    for backend, flag, path in (("checkpoint", "--load_path", opts.checkpoint), ("onnx", "--model", opts.onnx)):
        process, url = start_server(flag, path, opts.queue)
        try:
            rows += measure(url, backend, pictures, opts)
            if 4 in pictures:
                mixed.append(mixed_burst(url, backend, pictures[4], opts))
                print(mixed[-1], flush=True)
            if backend == "onnx":
                errors = error_table(url, opts)
        finally:
            stop_server(process)
    load_after = os.getloadavg()
    lines = [
        "# `semilearn serve` under load", "",
        f"Command: `{command}` (models: `{shown(opts.checkpoint)}`, `{shown(opts.onnx)}`), started {started}.", "",
        f"Machine: {os.cpu_count()} CPU cores, load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} "
        f"at the end. {opts.note} Server: one `semilearn serve` process per backend on 127.0.0.1, `--queue "
        f"{opts.queue}`, default limits, one inference at a time; the clients (httpx, asyncio) on the same machine. "
        f"Each cell: {opts.requests} requests or {opts.duration:g} s, whichever first, after two warm-up requests. "
        f"Pictures: FERPlus Valid faces (150-190 px) on a grey canvas, PNG, 300x300 (1 face) and 720x480 (4 faces), "
        f"every face found by the detector.", "",
        "## Requests per second and latency", "",
        "Latency: from sending the request to the whole answer, at the client (queueing included). "
        "busy: 503 answers; wrong faces: answers without the picture's number of faces.", "",
        "| backend | faces | clients | requests | answered 200 | busy (503) | wrong faces | seconds | requests/s | "
        "p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "## Bad requests mixed in", "",
        f"The 4-face burst at {max(opts.clients)} clients with every tenth request a bad one (in turn: "
        f"{', '.join(BURST_BAD)}).", "",
        "| backend | clients | good requests | good answered 200 | bad requests | bad refused with their status | "
        "good p50 ms | good p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|", *mixed, "",
        "## What each refused request gets", "",
        f"One of each, against the ONNX server (limits: {opts.max_bytes:,} bytes, {opts.max_pixels:,} pixels):", "",
        "| request | status | `error` |", "|---|---:|---|", *errors, ""]
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
