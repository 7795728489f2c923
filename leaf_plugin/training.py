"""Running a training: USB's ``train.py`` flow on the plug-in's runtime, in one process or one per device.

``semilearn train``, :func:`leaf_plugin.train` and the distributed tests all start here."""
from __future__ import annotations

import json
import os
import random
import shutil
import time
from argparse import Namespace
from typing import Sequence

import numpy as np
import torch

from .arguments import build_algorithm
from .errors import UserError
from .history import read_history, tail_scores
from .logs import close_logger, open_log_file, run_logger, training_logger_name
from .report import write_report
from .runtime import resolve_device
from .runs import LATEST_CHECKPOINT, RESULTS_FILE, refuse_run_folder


def train(argv: Sequence[str] = ()) -> dict:
    """Run ``semilearn train ARGV`` in this process; returns the run's results (final EMA top-1,
    balanced accuracy, wall time, paths).  Raises UserError on bad input."""
    from .arguments import parse_train_args

    return run_train(parse_train_args([str(a) for a in argv]))


def check_run_folder(args: Namespace) -> str:
    """The run folder of ``semilearn train``; refuses to reuse one without --overwrite or --resume."""
    save_path = os.path.join(args.save_dir, args.save_name)
    if args.resume and args.load_path is None:
        args.load_path = os.path.join(save_path, LATEST_CHECKPOINT)
    refuse_run_folder(save_path, resume=args.resume, overwrite=args.overwrite, checkpoint=args.load_path or "")
    return save_path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_train(args: Namespace) -> dict:
    """Check the run folder, then train in this process or in one process per device."""
    check_run_folder(args)
    args.distributed = args.world_size > 1 or args.multiprocessing_distributed
    device = resolve_device(args)
    if args.dist_backend is None:
        args.dist_backend = "nccl" if device.type == "cuda" else "gloo"
    if args.multiprocessing_distributed:
        procs = args.procs_per_node or (torch.cuda.device_count() if device.type == "cuda" else 2)
        args.world_size = procs * args.world_size
        args.procs_per_node = procs
        if device.type == "cpu" and not args.threads:  # share the cores instead of oversubscribing them
            args.threads = max(1, (os.cpu_count() or 1) // procs)
        import torch.multiprocessing as mp
        mp.spawn(main_worker, nprocs=procs, args=(procs, args))
        result_file = os.path.join(args.save_dir, args.save_name, RESULTS_FILE)
        return json.load(open(result_file)) if os.path.isfile(result_file) else {}
    args.procs_per_node = 1
    return main_worker(args.gpu if device.type == "cuda" else 0, 1, args)


def main_worker(local_rank: int, procs_per_node: int, args: Namespace) -> dict:
    """One training process (USB's main_worker): the run's results."""
    return train_process(local_rank, procs_per_node, args)[1]


def train_process(local_rank: int, procs_per_node: int, args: Namespace) -> tuple:
    """One training process from set-up to tear-down: (the trained algorithm, the results)."""

    device = resolve_device(args)
    if device.type == "cuda":
        args.gpu = local_rank if args.multiprocessing_distributed else device.index
        torch.cuda.set_device(args.gpu)
    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.distributed:
        import torch.distributed as dist
        if args.multiprocessing_distributed:
            args.rank = args.rank * procs_per_node + local_rank
        dist.init_process_group(backend=args.dist_backend, init_method=args.dist_url,
                                world_size=args.world_size, rank=args.rank)
    is_main = not args.distributed or args.rank == 0
    save_path = os.path.join(args.save_dir, args.save_name)
    logger = run_logger(training_logger_name(args), save_path, "INFO" if is_main else "WARNING",
                        deferred=True)
    try:  # everything that can refuse the run happens before the run folder is touched
        algorithm = build_algorithm(args, logger)
        if args.distributed:
            wrap_ddp(algorithm, device)
        if args.resume:
            algorithm.load_model(args.load_path)
    except UserError:
        close_logger(logger)
        raise
    if is_main:
        if os.path.exists(save_path) and args.overwrite and not args.resume:
            shutil.rmtree(save_path)
        open_log_file(logger, save_path)
        if args.use_tensorboard:
            from semilearn.core.utils import TBLog
            algorithm.tb_log = TBLog(save_path, "tensorboard", use_tensorboard=True)
    tb_log = algorithm.tb_log
    n_params = sum(p.numel() for p in algorithm.model.parameters() if p.requires_grad)
    logger.info(f"{args.algorithm} on {args.dataset} ({args.num_labels} labels), net {args.net} "
                f"({n_params:,} parameters), device {device}, {args.num_train_iter} iterations")
    started = time.time()
    algorithm.train()
    wall = time.time() - started
    result = {}
    if is_main:
        final = algorithm.evaluate("eval")
        result = {"algorithm": args.algorithm, "dataset": args.dataset, "num_labels": args.num_labels,
                  "seed": args.seed, "iterations": algorithm.it, "top1": final["eval/top-1-acc"],
                  "balanced_acc": final["eval/balanced_acc"], "best_top1": algorithm.best_eval_acc,
                  "best_it": algorithm.best_it, **tail_scores(read_history(save_path)), "wall_time_s": wall,
                  "checkpoint": os.path.join(save_path, LATEST_CHECKPOINT), "log": os.path.join(save_path, "log.txt")}
        with open(os.path.join(save_path, RESULTS_FILE), "w") as f:
            json.dump(result, f, indent=2)
        if args.report:
            result["report"] = write_report(algorithm, save_path)
        logger.info(f"final EMA model: top-1 {100 * result['top1']:.2f} %, balanced accuracy "
                    f"{100 * result['balanced_acc']:.2f} % ({wall:.0f} s of training)")
        logger.info(f"checkpoint: {result['checkpoint']}  logs: {result['log']}"
                    + (f"  tensorboard: {os.path.join(save_path, 'tensorboard')}" if tb_log else ""))
    close_logger(logger)
    if args.distributed:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return algorithm, result


def wrap_ddp(algorithm, device: torch.device) -> None:
    """DistributedDataParallel around the model and the EMA model, as USB does (SyncBatchNorm
    on GPUs; on CPUs, where SyncBatchNorm does not run, BN statistics stay per process and
    rank 0's are saved)."""
    import warnings

    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # broadcast_buffers, USB's setting
        for name in ("model", "ema_model"):
            module = getattr(algorithm, name)
            if device.type == "cuda":
                module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
            setattr(algorithm, name, DDP(module, device_ids=ids, broadcast_buffers=False,
                                         find_unused_parameters=True))
