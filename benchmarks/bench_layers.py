"""Forward+backward time of ExpertGating vs a per-expert Python loop.

Usage: python benchmarks/bench_layers.py [--device cpu|cuda|all] [--repeats 20] [--dim 512]
       [--threads N]

The loop baseline is the straightforward implementation: K separate ``nn.Sequential``
experts (Linear-ReLU-Linear) run one after the other on the whole batch, with the same noisy
top-k gate. Both modules are in training mode and the timed step is
``(out.sum() + balance).backward()``. ExpertGating also computes Shazeer's smooth load
estimate; the baseline uses the plain expert counts, so any gap is not due to the gate.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from leaf_plugin.layers import ExpertGating
from leaf_plugin.layers.gating import cv_squared


class LoopGating(nn.Module):
    """Reference: K ``nn.Sequential`` experts and a Python loop over them."""

    def __init__(self, dim: int, num_experts: int, top_k: int = 2, balance_coef: float = 0.01) -> None:
        super().__init__()
        self.top_k, self.balance_coef = top_k, balance_coef
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, dim // 2), nn.ReLU(), nn.Linear(dim // 2, dim))
            for _ in range(num_experts)
        )
        self.w_gate = nn.Parameter(torch.randn(dim, num_experts) / dim**0.5)
        self.w_noise = nn.Parameter(torch.zeros(dim, num_experts))

    def forward(self, v: Tensor):
        logits = v @ self.w_gate
        if self.training:
            logits = logits + torch.randn_like(logits) * (F.softplus(v @ self.w_noise) + 0.01)
        top_v, top_i = logits.topk(self.top_k, dim=1)
        gates = torch.zeros_like(logits).scatter(1, top_i, torch.softmax(top_v, dim=1))
        out = v
        for k, expert in enumerate(self.experts):
            out = out + gates[:, k : k + 1] * expert(v)
        balance = self.balance_coef * (cv_squared(gates.sum(0)) + cv_squared((gates > 0).sum(0).float()))
        return out, gates, balance


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
            loop = LoopGating(dim, num_experts=k, top_k=2).to(device).train()
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
