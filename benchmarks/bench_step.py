"""Time per training step (forward + backward + optimizer), LEAF-wrapped vs host.

Builds each algorithm exactly as ``semilearn train`` does, takes one fixed
batch from its own loaders, and times ``train_step`` + the parameter update
(semilearn's ParamUpdateHook) after warm-up, the host's and the wrapped steps taking turns;
prints a markdown table with the ratio leaf_<host> / <host>.

    python benchmarks/bench_step.py                       # CPU, leaf_cnn4, 32 px digits
    python benchmarks/bench_step.py --device cuda --amp    # on a GPU, with AMP and channels_last
    python benchmarks/bench_step.py --net resnet18 --img_size 224 --batch_size 16 --uratio 1 --hosts fixmatch
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import torch


def build(algorithm, opts, extra=()):
    from leaf_plugin.cli.config import parse_train_args
    from leaf_plugin.nets.builders import net_builder_for
    import leaf_plugin

    argv = ["--algorithm", algorithm, "--device", opts.device, "--net", opts.net, "--img_size", str(opts.img_size),
            "--batch_size", str(opts.batch_size), "--uratio", str(opts.uratio), "--num_workers", "0",
            "--progress", "false", "--use_tensorboard", "false", "--amp", str(opts.amp).lower(),
            "--save_dir", "/tmp/bench_step", "--num_train_iter", "1000", *extra]
    args = parse_train_args(argv)
    args.distributed = False
    alg = leaf_plugin.algorithm_class(algorithm)(args, net_builder_for(args), None, logging.getLogger("bench"))
    if opts.channels_last and alg.device.type == "cuda":
        alg.model = alg.model.to(memory_format=torch.channels_last)
    return alg


def stepper(alg):
    """A function that runs one timed training step of ``alg`` on a fixed batch; returns seconds."""
    lb = next(iter(alg.loader_dict["train_lb"]))
    ulb = next(iter(alg.loader_dict["train_ulb"]))
    batch = alg.process_batch(**lb, **ulb)
    alg.ema = None
    sync = (lambda: torch.cuda.synchronize(alg.device)) if alg.device.type == "cuda" else (lambda: None)

    def one() -> float:
        sync()
        start = time.perf_counter()
        alg.out_dict, alg.log_dict = alg.train_step(**batch)
        alg.call_hook("after_train_step", "ParamUpdateHook")
        sync()
        return time.perf_counter() - start

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--net", default="leaf_cnn4")
    p.add_argument("--img_size", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--uratio", type=int, nargs="+", default=[7, 2])
    p.add_argument("--hosts", nargs="+", default=["fixmatch", "flexmatch", "freematch"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    opts = p.parse_args(argv)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    print(f"device {opts.device}, net {opts.net}, {opts.img_size} px, labeled batch {opts.batch_size}, "
          f"amp {opts.amp}, channels_last {opts.channels_last}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {opts.repeats} steps after {opts.warmup} warm-up, "
          f"host and LEAF steps taking turns\n")
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


if __name__ == "__main__":
    sys.exit(main())
