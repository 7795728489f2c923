"""Where the LEAF step's time goes: ``torch.profiler`` over N training steps, host vs LEAF.

Builds the host and its LEAF version exactly as ``benchmarks/bench_step.py`` does (same flags,
one fixed batch from each algorithm's own loaders), profiles ``steps`` training steps
(``train_step`` + the parameter update) of each after warm-up, and prints, per operator, the
self CPU time per step of the host and of LEAF, sorted by LEAF's, plus the totals.

    python benchmarks/probes/profile_step.py                          # fixmatch, uratio 7, leaf_cnn4 32 px
    python benchmarks/probes/profile_step.py --leaf_view2_grad false  # LEAF's second view without grad
    python benchmarks/probes/profile_step.py --device cuda --sort cuda
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench_step.py
from bench_step import add_build_arguments, build, stepper  # noqa: E402


def profile_steps(alg, steps: int, warmup: int, cuda: bool):
    """``{operator: (self CPU us, self device us, calls)}`` summed over ``steps`` steps."""
    one = stepper(alg)
    for _ in range(warmup):
        one()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("## step"):
                one()
    table = defaultdict(lambda: [0.0, 0.0, 0])
    for e in prof.key_averages():
        row = table[e.key]
        row[0] += e.self_cpu_time_total
        row[1] += getattr(e, "self_device_time_total", 0.0) or 0.0
        row[2] += e.count
    return dict(table)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(p)
    p.add_argument("--uratio", type=int, default=7)
    p.add_argument("--host", default="fixmatch")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--leaf_view2_grad", default="true")
    p.add_argument("--sort", choices=["cpu", "cuda"], default="cpu")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    cuda = opts.device.startswith("cuda")
    host = build(opts.host, opts)
    leaf = build("leaf_" + opts.host, opts, ["--leaf_view2_grad", opts.leaf_view2_grad])
    # alternate short profiles so a slow phase of a shared machine falls on both alike
    tables = {"host": defaultdict(lambda: [0.0, 0.0, 0]), "leaf": defaultdict(lambda: [0.0, 0.0, 0])}
    rounds = 2
    for _ in range(rounds):
        for name, alg in (("host", host), ("leaf", leaf)):
            for key, (c, d, n) in profile_steps(alg, max(1, opts.steps // rounds), opts.warmup, cuda).items():
                row = tables[name][key]
                row[0] += c
                row[1] += d
                row[2] += n
    steps = rounds * max(1, opts.steps // rounds)
    col = 0 if opts.sort == "cpu" else 1
    keys = sorted(set(tables["host"]) | set(tables["leaf"]),
                  key=lambda k: -max(tables["leaf"].get(k, [0, 0, 0])[col], tables["host"].get(k, [0, 0, 0])[col]))
    keys = [k for k in keys if k != "## step"]
    what = "self CPU" if col == 0 else "self CUDA"
    print(f"{opts.host} vs leaf_{opts.host} (view2 grad {opts.leaf_view2_grad}), device {opts.device}, net {opts.net}, "
          f"{opts.img_size} px, labeled batch {opts.batch_size}, uratio {opts.uratio}, amp {opts.amp}, "
          f"channels_last {opts.channels_last}, {torch.get_num_threads()} threads; {what} time per step "
          f"(ms) over {steps} profiled steps, top {opts.top} operators\n")
    print(f"| operator | host {what} (ms) | host calls | LEAF {what} (ms) | LEAF calls | LEAF - host (ms) |")
    print("|---|---|---|---|---|---|")
    for k in keys[:opts.top]:
        h = tables["host"].get(k, [0.0, 0.0, 0])
        f = tables["leaf"].get(k, [0.0, 0.0, 0])
        print(f"| {k} | {h[col] / 1e3 / steps:.2f} | {h[2] / steps:.0f} | {f[col] / 1e3 / steps:.2f} | "
              f"{f[2] / steps:.0f} | {(f[col] - h[col]) / 1e3 / steps:+.2f} |")
    tot_h = sum(v[col] for k, v in tables["host"].items() if k != "## step") / 1e3 / steps
    tot_f = sum(v[col] for k, v in tables["leaf"].items() if k != "## step") / 1e3 / steps
    calls_h = sum(v[2] for v in tables["host"].values()) / steps
    calls_f = sum(v[2] for v in tables["leaf"].values()) / steps
    print(f"| **all operators** | {tot_h:.2f} | {calls_h:.0f} | {tot_f:.2f} | {calls_f:.0f} | {tot_f - tot_h:+.2f} |")
    print(f"\nLEAF / host, summed self {('CPU' if col == 0 else 'CUDA')} time: {tot_f / max(tot_h, 1e-9):.2f}")


if __name__ == "__main__":
    sys.exit(main())
