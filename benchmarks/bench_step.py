"""Time per training step (forward + backward + optimizer), LEAF-wrapped vs host.

Builds each algorithm exactly as ``semilearn train`` does, takes one fixed
batch from its own loaders, and times ``train_step`` + the parameter update
(semilearn's ParamUpdateHook) after warm-up, the host's and the wrapped steps taking turns;
prints a markdown table with the ratio leaf_<host> / <host>.

    python benchmarks/bench_step.py                       # CPU, leaf_cnn4, 32 px digits
    python benchmarks/bench_step.py --device cuda --amp    # on a GPU, with AMP and channels_last
    python benchmarks/bench_step.py --net resnet18 --img_size 224 --batch_size 16 --uratio 1 --hosts fixmatch

Then a second table, host and LEAF (fixmatch, first --uratio) under each runtime variant: plain,
channels-last, bf16 autocast (fp16 + GradScaler on CUDA: semilearn's --amp), torch.compile of the
network, and the best combination of those that sped LEAF up; each with its speed-up over plain.
Each variant is a flag of ``semilearn train`` (``--channels_last``, ``--amp``, ``--compile``).
``--variants`` picks them (``none`` skips the table); ``--clock cpu`` times process CPU time
instead of wall time (steadier on a machine shared with other jobs).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import torch

CLOCK = time.perf_counter
VARIANTS = ("plain", "channels_last", "autocast", "compile")


# runtime variants, as the flags of ``semilearn train`` that switch them on
VARIANT_FLAGS = {"channels_last": ["--channels_last", "true"], "autocast": ["--amp", "true"],
                 "compile": ["--compile", "true"]}


def build(algorithm, opts, extra=()):
    """``algorithm`` built exactly as ``semilearn train`` builds it, at the benchmark's sizes."""
    from leaf_plugin.arguments import algorithm_from_argv

    argv = ["--algorithm", algorithm, "--device", opts.device, "--net", opts.net, "--img_size", str(opts.img_size),
            "--batch_size", str(opts.batch_size), "--uratio", str(opts.uratio), "--num_workers", "0",
            "--progress", "false", "--use_tensorboard", "false", "--amp", str(opts.amp).lower(),
            "--channels_last", str(opts.channels_last).lower(),
            "--save_dir", "/tmp/bench_step", "--num_train_iter", "1000", *extra]
    return algorithm_from_argv(argv, logging.getLogger("bench"))


def build_variant(algorithm, opts, variant: str, extra=()):
    """``build`` with the runtime variants named in ``variant`` ("plain", or "+"-joined)."""
    flags = []
    for v in variant.split("+"):
        if v in VARIANT_FLAGS:
            flags += VARIANT_FLAGS[v]
        elif v != "plain":
            raise ValueError(f"unknown variant {v!r}; expected plain or a '+'-joined subset of {VARIANTS[1:]}")
    return build(algorithm, opts, [*extra, *flags])


def stepper(alg):
    """A function that runs one timed training step of ``alg`` on a fixed batch; returns seconds."""
    lb = next(iter(alg.loader_dict["train_lb"]))
    ulb = next(iter(alg.loader_dict["train_ulb"]))
    batch = alg.process_batch(**lb, **ulb)
    alg.ema = None
    sync = (lambda: torch.cuda.synchronize(alg.device)) if alg.device.type == "cuda" else (lambda: None)

    def one() -> float:
        sync()
        start = CLOCK()
        alg.out_dict, alg.log_dict = alg.train_step(**batch)
        alg.call_hook("after_train_step", "ParamUpdateHook")
        sync()
        return CLOCK() - start

    return one


def time_interleaved(steppers, repeats: int, warmup: int):
    """Median step time of each stepper, the steppers taking turns (A B C A B C ...) so that a
    slow phase of a shared machine falls on all of them alike."""
    times = [[] for _ in steppers]
    for i in range(warmup + repeats):
        for k, one in enumerate(steppers):
            t = one()
            if i >= warmup:
                times[k].append(t)
    return [statistics.median(t) for t in times]


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    """The flags :func:`build` reads (shared with profile_step.py), and --warmup / --threads."""
    p.add_argument("--device", default="cpu")
    p.add_argument("--net", default="leaf_cnn4")
    p.add_argument("--img_size", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(p)
    p.add_argument("--uratio", type=int, nargs="+", default=[7, 2])
    p.add_argument("--hosts", nargs="+", default=["fixmatch", "flexmatch", "freematch"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS),
                   help=f"runtime variants of the second table, of {', '.join(VARIANTS)}; none: no table")
    p.add_argument("--variant_host", default="fixmatch")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall: perf_counter; cpu: this process's CPU time (steadier when the machine is shared)")
    opts = p.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if opts.clock == "wall" else time.process_time
    if opts.threads:
        torch.set_num_threads(opts.threads)
    print(f"device {opts.device}, net {opts.net}, {opts.img_size} px, labeled batch {opts.batch_size}, "
          f"amp {opts.amp}, channels_last {opts.channels_last}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {opts.clock} clock; median of {opts.repeats} steps after "
          f"{opts.warmup} warm-up, host and LEAF steps taking turns\n")
    print("| host | uratio | host step (ms) | LEAF step (ms) | ratio | LEAF, view2 no-grad (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for uratio in opts.uratio:
        for host in opts.hosts:
            o = argparse.Namespace(**{**vars(opts), "uratio": uratio})
            algs = [build(host, o), build("leaf_" + host, o),
                    build("leaf_" + host, o, ["--leaf_view2_grad", "false"])]
            t_host, t_leaf, t_nograd = time_interleaved([stepper(a) for a in algs], opts.repeats, opts.warmup)
            print(f"| {host} | {uratio} | {1e3 * t_host:.1f} | {1e3 * t_leaf:.1f} | {t_leaf / t_host:.2f} | "
                  f"{1e3 * t_nograd:.1f} | {t_nograd / t_host:.2f} |", flush=True)
            del algs
    variants = [v for v in opts.variants if v != "none"]
    if variants:
        variant_table(opts, variants)


def variant_table(opts, variants):
    """Host and LEAF step times under each runtime variant, then the best combination, all timed
    interleaved with plain; speed-ups are over plain, ratios LEAF / host."""
    o = argparse.Namespace(**{**vars(opts), "uratio": opts.uratio[0]})
    host = opts.variant_host
    print(f"\n{opts.device}: {host} vs leaf_{host}, uratio {o.uratio}, under each runtime variant "
          f"(median of {opts.repeats} after {opts.warmup} warm-up, all taking turns)\n")
    print("| variant | host step (ms) | LEAF step (ms) | LEAF / host | host speed-up | LEAF speed-up |")
    print("|---|---|---|---|---|---|")
    names = ["plain"] + [v for v in variants if v != "plain"]

    def measure(names):
        steppers = []
        for v in names:
            steppers += [stepper(build_variant(host, o, v)), stepper(build_variant("leaf_" + host, o, v))]
        times = time_interleaved(steppers, opts.repeats, opts.warmup)
        return {v: (times[2 * i], times[2 * i + 1]) for i, v in enumerate(names)}

    def row(v, t, plain):
        print(f"| {v} | {1e3 * t[0]:.1f} | {1e3 * t[1]:.1f} | {t[1] / t[0]:.2f} | {plain[0] / t[0]:.2f} | "
              f"{plain[1] / t[1]:.2f} |", flush=True)

    res = measure(names)
    for v in names:
        row(v, res[v], res["plain"])
    helped = [v for v in names if v != "plain" and res[v][1] < res["plain"][1]]
    if len(helped) >= 2:
        best = "+".join(helped)
        again = measure(["plain", best])
        row(f"best: {best} (vs plain timed with it: {1e3 * again['plain'][0]:.1f} / {1e3 * again['plain'][1]:.1f})",
            again[best], again["plain"])
    else:
        print(f"| best: {helped[0] if helped else 'plain'} (no combination: "
              f"{len(helped)} variant{'s' if len(helped) != 1 else ''} sped LEAF up) | | | | | |")


if __name__ == "__main__":
    sys.exit(main())
