"""Forward+backward time of ExpertGating vs a per-expert Python loop.

Usage: python benchmarks/bench_layers.py [--device cpu|cuda|all] [--repeats 20] [--dim 512]
       [--threads N]

The loop baseline is the test reference ``tests/helpers/leaf_reference.py:LoopReference``: the
same parameters, run as K separate expert MLPs one after the other on the whole batch, with the
noisy top-k gate and Shazeer's smooth load written out by hand. Both modules are in training mode
and the timed step is ``(out.sum() + balance).backward()``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import torch
from torch import Tensor, nn

from leaf_plugin.layers import ExpertGating

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.leaf_reference import LoopReference  # noqa: E402  (test-only reference, not in the package)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(module: nn.Module, v: Tensor) -> float:
    """Milliseconds of one forward+backward."""
    module.zero_grad(set_to_none=True)
    _sync(v.device)
    t0 = time.perf_counter()
    out, _, bal = module(v)
    (out.sum() + bal).backward()
    _sync(v.device)
    return (time.perf_counter() - t0) * 1e3


def time_pair(a: nn.Module, b: nn.Module, v: Tensor, repeats: int, warmup: int) -> Tuple[float, float]:
    """Median milliseconds of ``a`` and ``b``; steps interleave so load spikes hit both alike."""
    for _ in range(warmup):
        _step(a, v), _step(b, v)
    times_a: List[float] = []
    times_b: List[float] = []
    for _ in range(repeats):
        times_a.append(_step(a, v))
        times_b.append(_step(b, v))
    return statistics.median(times_a), statistics.median(times_b)


def run(device: torch.device, dim: int, repeats: int, warmup: int, emit: Callable[[str], None]) -> None:
    for k in (4, 8, 16):
        for batch in (64, 512):
            torch.manual_seed(0)
            vec = ExpertGating(dim, num_experts=k, top_k=2).to(device).train()
            loop = LoopReference(copy.deepcopy(vec)).train()
            v = torch.randn(batch, dim, device=device)
            t_vec, t_loop = time_pair(vec, loop, v, repeats, warmup)
            emit(f"| {device.type} | {k} | {batch} | {t_vec:.2f} | {t_loop:.2f} | {t_loop / t_vec:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            parser.error("--device cuda: CUDA is not available")
        devices.remove("cuda")

    print(f"d = {args.dim}, top_k = 2, median of {args.repeats} after {args.warmup} warm-up, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print()
    print("| device | K | batch | ExpertGating (ms) | loop (ms) | loop / ExpertGating |")
    print("|---|---|---|---|---|---|")
    for name in devices:
        run(torch.device(name), args.dim, args.repeats, args.warmup, print)


if __name__ == "__main__":
    main()
