"""semilearn hooks without CUDA calls, the bias-corrected EMA, and the progress bar.

semilearn 0.3.2's ``TimerHook`` uses ``torch.cuda.Event`` and its ``ParamUpdateHook``
calls ``torch.cuda.synchronize``; :func:`replace_hook` swaps them for these."""
from __future__ import annotations

import sys
import time
from typing import Optional

import numpy as np
import torch
from semilearn.core.hooks import CheckpointHook, EMAHook, EvaluationHook, Hook, LoggingHook, ParamUpdateHook
from tqdm.auto import tqdm

from ..errors import TrainingError
from ..history import MASK_KEYS, is_eval_iteration
from .ema_bn import BufferEMA


def insert_hook_after(algorithm, after: str, name: str, hook: Hook) -> None:
    """Register ``hook`` as ``name`` right after the hook called ``after``, at its priority."""
    # register_hook appends after every hook of a priority; only ``_hooks`` says "right after this one"
    index = next(i for i, h in enumerate(algorithm._hooks) if h.name == after)
    hook.priority, hook.name = algorithm._hooks[index].priority, name
    algorithm._hooks.insert(index + 1, hook)
    algorithm.hooks_dict = type(algorithm.hooks_dict)((h.name, h) for h in algorithm._hooks)


def replace_hook(algorithm, name: str, hook: Hook) -> None:
    """Swap the registered hook called ``name`` for ``hook``, keeping its priority and place."""
    # semilearn has no public "replace": its hook list ``_hooks`` is the only place a hook's order lives
    for i, old in enumerate(algorithm._hooks):
        if old.name == name:
            hook.priority, hook.name = old.priority, old.name
            algorithm._hooks[i] = hook
            break
    else:
        algorithm.register_hook(hook, name, "NORMAL")
    algorithm.hooks_dict = type(algorithm.hooks_dict)((h.name, h) for h in algorithm._hooks)


class DeviceParamUpdateHook(ParamUpdateHook):
    """semilearn's update step without CUDA calls, guarded against non-finite losses."""

    def before_train_step(self, algorithm):
        algorithm._step_started = time.perf_counter()

    def after_train_step(self, algorithm):
        loss = algorithm.out_dict["loss"]
        if not torch.isfinite(loss.detach()).all():
            bad = [k for k, v in algorithm.log_dict.items()
                   if k.endswith("loss") and isinstance(v, float) and not np.isfinite(v)]
            term = bad[0].split("/")[-1] if bad else "total_loss"
            if algorithm.nonfinite_skipped < algorithm.args.skip_nonfinite:
                algorithm.nonfinite_skipped += 1
                algorithm.print_fn(f"iteration {algorithm.it + 1}: loss term '{term}' is non-finite; "
                                   f"step skipped ({algorithm.nonfinite_skipped}/{algorithm.args.skip_nonfinite})")
                algorithm.optimizer.zero_grad(set_to_none=True)
                algorithm.log_dict = {"train/nonfinite_skipped": float(algorithm.nonfinite_skipped)}
                return
            raise TrainingError(f"iteration {algorithm.it + 1}: loss term '{term}' is non-finite "
                                f"({algorithm.log_dict.get(bad[0]) if bad else loss.item()}); training stopped, "
                                f"the last good checkpoint is kept (use --skip_nonfinite N to skip such steps)")
        super().after_train_step(algorithm)
        if algorithm.device.type == "cuda":
            torch.cuda.synchronize(algorithm.device)
        started = getattr(algorithm, "_step_started", None)
        if started is not None:
            algorithm.log_dict["train/run_time"] = time.perf_counter() - started


class WallClockTimerHook(Hook):
    """``TimerHook`` with wall-clock time instead of CUDA events."""

    def before_run(self, algorithm):
        algorithm._batch_started = time.perf_counter()

    def before_train_step(self, algorithm):
        algorithm._prefetch_time = time.perf_counter() - algorithm._batch_started

    def after_train_step(self, algorithm):
        algorithm.log_dict["lr"] = algorithm.optimizer.param_groups[-1]["lr"]
        algorithm.log_dict["train/prefetch_time"] = algorithm._prefetch_time
        algorithm._batch_started = time.perf_counter()


def debiased_decay(ema_m: float, step: int) -> float:
    """Decay of update ``step`` (1, 2, ...) that makes the EMA the bias-corrected average
    ``sum_i m^(t-i) (1-m) theta_i / (1 - m^t)`` of the trained weights ``theta_1..theta_t``:
    the initial weights get no share, and the averaging window is still that of ``ema_m``."""
    return 1.0 - (1.0 - ema_m) / (1.0 - ema_m ** step)


class DebiasedEMAHook(EMAHook):
    """semilearn's EMA with Adam-style bias correction (``--ema_debias``): the first update copies
    the weights and update ``t`` uses :func:`debiased_decay`, so a short run's EMA model is not
    partly its random start. The decay depends only on the iteration, so a resume is exact."""

    def after_train_step(self, algorithm):
        if algorithm.ema is not None:
            algorithm.ema.decay = debiased_decay(algorithm.ema_m, algorithm.it + 1)
        super().after_train_step(algorithm)


class BufferEMAHook(Hook):
    """Averages the live model's BN statistics with the EMA's decay (``--ema_bn ema``, or
    to compare modes); with ``into_ema_model`` the EMA model holds the average, so the
    evaluations and checkpoints use it and a resume continues it."""

    def __init__(self, into_ema_model: bool):
        self.into_ema_model = into_ema_model

    def before_run(self, algorithm):
        algorithm.ema_buffers = BufferEMA(algorithm.ema_model if self.into_ema_model else algorithm.model)
        saved = getattr(algorithm, "_saved_ema_buffers", None)
        if saved:  # a resumed run continues the average it saved
            algorithm.ema_buffers.shadow = {k: v.to(algorithm.device) for k, v in saved.items()}

    def after_train_step(self, algorithm):
        if algorithm.ema is not None:
            algorithm.ema_buffers.update(algorithm.model, algorithm.ema.decay)
            if self.into_ema_model:
                algorithm.ema_buffers.copy_to(algorithm.ema_model)


def ema_start_warning(ema_m: float, num_train_iter: int, limit: float = 0.01) -> Optional[str]:
    """A warning when the EMA model evaluated at the end still holds more than ``limit`` of the
    initial weights (``ema_m ** num_train_iter``): fresh layers (a new classifier, LEAF's experts
    and gates) are then averaged with their random start."""
    if not 0.0 < ema_m < 1.0 or num_train_iter <= 0:
        return None
    share = ema_m ** num_train_iter
    if share <= limit:
        return None
    return (f"warning: with --ema_m {ema_m} the EMA model after {num_train_iter} iterations still holds "
            f"{100 * share:.0f} % of the initial weights; for this length use --ema_m "
            f"{limit ** (1.0 / num_train_iter):.4f} or lower, or --ema_debias true (see benchmarks/RESULTS.md)")


def console_line(algorithm, evaluated: bool) -> str:
    """One readable log line: the loss terms (host's and LEAF's, not the total), the host's
    mask ratio and the learning rate; after an evaluation, its accuracy and the best so far.
    Everything else (each expert's gate weight, timings) goes to TensorBoard and metrics.jsonl."""
    log = algorithm.log_dict
    parts = [f"it {algorithm.it + 1}/{algorithm.num_train_iter}"]
    losses = [(k.split("/")[-1], v) for k, v in log.items()
              if k.startswith("train/") and k.endswith("_loss") and k != "train/total_loss"]
    if losses:
        parts.append(" ".join(f"{name} {float(v):.4f}" for name, v in losses))
    mask = next((k for k in MASK_KEYS if k in log), None)
    if mask is not None:
        parts.append(f"mask {float(log[mask]):.3f}")
    if "lr" in log:
        parts.append(f"lr {float(log['lr']):.3g}")
    if evaluated and "eval/top-1-acc" in log:
        parts.append(f"eval top-1 {100 * float(log['eval/top-1-acc']):.2f} %, balanced "
                     f"{100 * float(log.get('eval/balanced_acc', float('nan'))):.2f} % (best "
                     f"{100 * algorithm.best_eval_acc:.2f} % at it {algorithm.best_it + 1})")
    return " | ".join(parts)


class ConsoleLoggingHook(LoggingHook):
    """semilearn's ``LoggingHook`` (TensorBoard gets every value) with :func:`console_line`
    instead of a line holding every logged number."""

    def after_train_step(self, algorithm):
        evaluated = is_eval_iteration(algorithm)
        if not (evaluated or self.every_n_iters(algorithm, algorithm.num_log_iter)):
            return
        if not algorithm.distributed or algorithm.rank % algorithm.ngpus_per_node == 0:
            algorithm.print_fn(console_line(algorithm, evaluated))
        if algorithm.tb_log is not None:
            algorithm.tb_log.update(algorithm.log_dict, algorithm.it)


class CadenceEvaluationHook(EvaluationHook):
    """semilearn's evaluation at every iteration :func:`~leaf_plugin.history.is_eval_iteration`
    names (``--num_eval_iter``, and ``--num_eval_iter_tail`` in the last fifth)."""

    def after_train_step(self, algorithm):
        if not is_eval_iteration(algorithm):
            return
        algorithm.print_fn("validating...")
        algorithm.log_dict.update(algorithm.evaluate("eval"))
        if algorithm.log_dict["eval/top-1-acc"] > algorithm.best_eval_acc:
            algorithm.best_eval_acc = algorithm.log_dict["eval/top-1-acc"]
            algorithm.best_it = algorithm.it


class CadenceCheckpointHook(CheckpointHook):
    """semilearn's checkpoints (latest, and best when this evaluation is the best) at every
    evaluated iteration."""

    def every_n_iters(self, algorithm, n):
        return is_eval_iteration(algorithm)


# ---- the progress bar ---------------------------------------------------------------------
SHOWN = ("sup_loss", "unsup_loss", "leaf_amb_loss", "leaf_con_loss", "total_loss", "util_ratio")


class ProgressBarHook(Hook):
    """tqdm bar over the training iterations (rank 0 only)."""

    def before_run(self, algorithm):
        self.bar = None
        if algorithm.distributed and algorithm.rank != 0:
            return
        self.bar = tqdm(total=algorithm.num_train_iter, initial=algorithm.it, desc=algorithm.args.algorithm,
                        unit="it", dynamic_ncols=True, file=sys.stderr, mininterval=1.0)

    def after_train_step(self, algorithm):
        if self.bar is None:
            return
        shown = {k.split("/")[-1]: v for k, v in algorithm.log_dict.items() if k.split("/")[-1] in SHOWN}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def after_run(self, algorithm):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
