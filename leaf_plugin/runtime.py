"""One runtime for every algorithm the command runs: CPU or CUDA, exact resume.

semilearn 0.3.2 assumes CUDA (``.cuda()`` in ``process_batch``/``evaluate`` and
some ``load_model``; ``torch.cuda.Event`` in ``TimerHook``;
``torch.cuda.synchronize`` in ``ParamUpdateHook``).  :func:`with_runtime` puts
:class:`DeviceRuntime` in front of any ``AlgorithmBase`` subclass; it replaces
those pieces through semilearn's own extension points (methods and named
hooks) and adds what long runs need: atomic checkpoints holding the RNG states
and the data-loader position, a resumable training loop, a non-finite-loss
guard, a progress bar and the plug-in's datasets.
"""
from __future__ import annotations

import os
import time
import warnings
from collections import defaultdict
from inspect import signature
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from semilearn.core.algorithmbase import AlgorithmBase
from semilearn.core.hooks import EMAHook, Hook, ParamUpdateHook
from semilearn.core.utils import get_data_loader
from semilearn.datasets import DistributedSampler
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_score, recall_score)

from .checkpoint import atomic_save, rng_state, set_rng_state
from .data import get_dataset_spec
from .errors import TrainingError, UserError

# keys AlgorithmBase.get_save_dict writes; anything else a host saves is host state
BASE_CHECKPOINT_KEYS = {"model", "ema_model", "optimizer", "loss_scaler", "it", "epoch", "best_it",
                        "best_eval_acc", "scheduler", "aim_run_hash"}
RUNTIME_CHECKPOINT_KEYS = {"rng_state", "loader_position", "nonfinite_skipped", "args", "runtime"}


def resolve_device(args) -> torch.device:
    """``args.device`` (cpu | cuda | auto, default auto) and ``args.gpu`` -> a torch device."""
    want = str(getattr(args, "device", None) or "auto").lower()
    if want not in ("cpu", "cuda", "auto"):
        raise UserError(f"--device '{want}' is not valid; expected cpu, cuda or auto")
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; expected --device cpu or auto")
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    gpu = getattr(args, "gpu", None)
    return torch.device("cuda", int(gpu) if gpu is not None else torch.cuda.current_device())


def to_device(obj, device: torch.device):
    """Tensors (or a dict of them) moved to ``device``; anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def replace_hook(algorithm: AlgorithmBase, name: str, hook: Hook) -> None:
    """Swap the registered hook called ``name`` for ``hook``, keeping its priority and place."""
    for i, old in enumerate(algorithm._hooks):
        if old.name == name:
            hook.priority, hook.name = old.priority, old.name
            algorithm._hooks[i] = hook
            break
    else:
        algorithm.register_hook(hook, name, "NORMAL")
    algorithm.hooks_dict = type(algorithm.hooks_dict)((h.name, h) for h in algorithm._hooks)


class ResumableSampler(DistributedSampler):
    """semilearn's ``RandomSampler`` (its ``DistributedSampler``) that can start its
    next pass part-way through, so a resumed run sees exactly the batches an
    uninterrupted one would, without loading the skipped ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip = 0

    def start_at(self, position: int) -> None:
        self.skip = max(0, int(position))

    def __iter__(self):
        indices = list(super().__iter__())[self.skip:]
        self.skip = 0
        return iter(indices)


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


class DeviceRuntime:
    """Mixin placed before an ``AlgorithmBase`` subclass; see :func:`with_runtime`."""

    def __init__(self, args, net_builder, tb_log=None, logger=None, **kwargs):
        self.device = resolve_device(args)
        for key, default in (("skip_nonfinite", 0), ("device", "auto")):
            if not hasattr(args, key):
                setattr(args, key, default)
        self.nonfinite_skipped = 0
        self._pending_rng = None
        self._in_step = False
        with warnings.catch_warnings():  # semilearn makes a (deprecated) CUDA GradScaler even on the CPU
            warnings.filterwarnings("ignore", message=".*GradScaler.*")
            super().__init__(args, net_builder, tb_log, logger, **kwargs)
        self.epoch = self.start_epoch
        # semilearn decides "first process of a node" by rank % ngpus_per_node: 0 GPUs on a CPU
        self.ngpus_per_node = max(1, int(getattr(args, "procs_per_node", None) or self.ngpus_per_node or 1))
        self.model.to(self.device)
        self.ema_model.to(self.device)
        if self.device.type == "cpu" and self.use_amp:
            # GradScaler is CUDA-only; bf16 autocast needs no scaling on the CPU
            self.use_amp = False
            self.amp_cm = lambda: torch.autocast("cpu", dtype=torch.bfloat16)

    # ---- data ---------------------------------------------------------------------------
    def set_dataset(self):
        spec = get_dataset_spec(self.args.dataset)
        if spec is None:
            return super().set_dataset()
        if self.distributed and self.rank != 0:
            torch.distributed.barrier()
        dataset_dict = spec.build(self.args, self.algorithm)
        self.args.ulb_dest_len = len(dataset_dict["train_ulb"]) if dataset_dict["train_ulb"] is not None else 0
        self.args.lb_dest_len = len(dataset_dict["train_lb"])
        self.print_fn(f"unlabeled data number: {self.args.ulb_dest_len}, labeled data number {self.args.lb_dest_len}")
        if self.distributed and self.rank == 0:
            torch.distributed.barrier()
        return dataset_dict

    def set_data_loader(self):
        if self.dataset_dict is None:
            return None
        loaders = super().set_data_loader()
        if self.args.train_sampler != "RandomSampler":
            return loaders
        world = torch.distributed.get_world_size() if self.distributed else 1
        rank = torch.distributed.get_rank() if self.distributed else 0
        for key, batch, workers in (("train_lb", self.args.batch_size, self.args.num_workers),
                                    ("train_ulb", self.args.batch_size * self.args.uratio, 2 * self.args.num_workers)):
            dset = self.dataset_dict[key]
            if dset is None or key not in loaders:
                continue
            sampler = ResumableSampler(dset, num_replicas=world, rank=rank,
                                       num_samples=self.num_iter_per_epoch * batch * world)
            loaders[key] = get_data_loader(self.args, dset, batch, data_sampler=sampler,
                                           num_workers=workers, distributed=self.distributed)
        return loaders

    def train_step_inputs(self) -> list:
        """Names ``process_batch`` passes to ``train_step``."""
        return list(signature(self.train_step).parameters)

    def process_batch(self, input_args=None, **kwargs):
        names = input_args if input_args is not None else self.train_step_inputs()
        return {k: to_device(v, self.device) for k, v in kwargs.items() if k in names and v is not None}

    # ---- hooks --------------------------------------------------------------------------
    def set_hooks(self):
        super().set_hooks()
        replace_hook(self, "ParamUpdateHook", DeviceParamUpdateHook())
        replace_hook(self, "TimerHook", WallClockTimerHook())
        if getattr(self.args, "ema_debias", False):
            replace_hook(self, "EMAHook", DebiasedEMAHook())
        from .history import HistoryHook
        self.register_hook(HistoryHook(), "HistoryHook", "LOWEST")
        if getattr(self.args, "progress", True):
            from .progress import ProgressBarHook
            self.register_hook(ProgressBarHook(), "ProgressBarHook", "LOWEST")

    # ---- training loop ------------------------------------------------------------------
    def train(self):
        """semilearn's loop, resumable part-way through an epoch."""
        if not getattr(self.args, "ema_debias", False):
            warning = ema_start_warning(float(getattr(self.args, "ema_m", 0.0)), self.num_train_iter)
            if warning:
                self.print_fn(warning)
        self.model.train()
        self.call_hook("before_run")
        for epoch in range(self.start_epoch, self.epochs):
            self.epoch = epoch
            if self.it >= self.num_train_iter:
                break
            self.call_hook("before_train_epoch")
            done_in_epoch = self.it - epoch * self.num_iter_per_epoch
            for key in ("train_lb", "train_ulb"):
                loader = self.loader_dict.get(key)
                if loader is not None and isinstance(loader.sampler, ResumableSampler):
                    loader.sampler.start_at(done_in_epoch * loader.batch_size)
            batches = zip(self.loader_dict["train_lb"], self.loader_dict["train_ulb"])
            iterator = iter(batches)
            if self._pending_rng is not None:  # after the loaders drew their seeds, as uninterrupted
                set_rng_state(self._pending_rng)
                self._pending_rng = None
            for data_lb, data_ulb in iterator:
                if self.it >= self.num_train_iter:
                    break
                self.call_hook("before_train_step")
                self._in_step = True
                self.out_dict, self.log_dict = self.train_step(**self.process_batch(**data_lb, **data_ulb))
                self.call_hook("after_train_step")
                self._in_step = False
                self.it += 1
            self.call_hook("after_train_epoch")
        self.call_hook("after_run")

    # ---- evaluation ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, eval_dest="eval", out_key="logits", return_logits=False):
        """semilearn's metrics on ``eval_dest`` with the EMA weights, on any device.

        Also keeps ``self.eval_details[eval_dest]``: labels, predictions, the
        confusion matrix and, for LEAF models, the mean gate weights."""
        model = self.model
        if self.ema is not None:
            self.ema.apply_shadow()
        else:
            model = self.ema_model
        was_training = model.training
        model.eval()
        y_true, y_pred, y_logits, gates = [], [], [], defaultdict(list)
        total_loss, total_num = 0.0, 0
        try:
            for data in self.loader_dict[eval_dest]:
                x = to_device(data["x_lb"], self.device)
                y = to_device(data["y_lb"], self.device)
                out = model(x)
                logits = out[out_key].float()
                total_loss += F.cross_entropy(logits, y, reduction="sum", ignore_index=-1).item()
                total_num += y.shape[0]
                y_true.append(y.cpu())
                y_pred.append(logits.argmax(-1).cpu())
                y_logits.append(logits.cpu())
                for level, g in (out.get("leaf_gates") or {}).items() if isinstance(out, dict) else ():
                    if g is not None:
                        gates[level].append(g.float().cpu())
        finally:
            if self.ema is not None:
                self.ema.restore()
            model.train(was_training)
        y_true = torch.cat(y_true).numpy()
        y_pred = torch.cat(y_pred).numpy()
        logits = torch.cat(y_logits).numpy()
        labels = np.arange(self.num_classes)
        cf = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
        self.eval_details = getattr(self, "eval_details", {})
        self.eval_details[eval_dest] = {"y_true": y_true, "y_pred": y_pred, "confusion": cf,
                                        "gates": {k: torch.cat(v).numpy() for k, v in gates.items()}}
        result = {
            eval_dest + "/loss": total_loss / max(total_num, 1),
            eval_dest + "/top-1-acc": accuracy_score(y_true, y_pred),
            eval_dest + "/balanced_acc": balanced_accuracy_score(y_true, y_pred),
            eval_dest + "/precision": precision_score(y_true, y_pred, average="macro", zero_division=0),
            eval_dest + "/recall": recall_score(y_true, y_pred, average="macro", zero_division=0),
            eval_dest + "/F1": f1_score(y_true, y_pred, average="macro", zero_division=0),
        }
        if return_logits:
            result[eval_dest + "/logits"] = logits
        return result

    # ---- checkpoints --------------------------------------------------------------------
    def get_save_dict(self):
        save_dict = super().get_save_dict()
        save_dict["model"] = unwrap(self.model).state_dict()
        save_dict["ema_model"] = unwrap(self.ema_model).state_dict()
        # semilearn stores it + 1, right for a save inside after_train_step (before ``it += 1``)
        # but one too many for the save after the run; count the steps really done
        done = self.it + 1 if self._in_step else self.it
        save_dict["it"] = done
        save_dict["epoch"] = min(self.epoch, max(self.epochs - 1, 0))  # the epoch in progress
        save_dict["rng_state"] = rng_state()
        save_dict["loader_position"] = done - self.epoch * self.num_iter_per_epoch
        save_dict["nonfinite_skipped"] = self.nonfinite_skipped
        save_dict["args"] = {k: v for k, v in vars(self.args).items()
                             if isinstance(v, (int, float, str, bool, type(None)))}
        return save_dict

    def save_model(self, save_name, save_path):
        path = os.path.join(save_path, save_name)
        atomic_save(self.get_save_dict(), path)
        self.print_fn(f"model saved: {path}")

    def load_model(self, load_path):
        """What ``AlgorithmBase.load_model`` restores, then host state (mask hooks' tensors,
        algorithm attributes) put back generically on this device, then the runtime state.
        Hosts' own ``load_model`` call ``.cuda()``, so this one replaces them."""
        checkpoint = read_checkpoint(load_path)
        self._check_compatible(checkpoint, load_path)
        unwrap(self.model).load_state_dict(strip_module_prefix(checkpoint["model"]))
        unwrap(self.ema_model).load_state_dict(strip_module_prefix(checkpoint["ema_model"]))
        if "optimizer" in checkpoint:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and "scheduler" in checkpoint:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        if "loss_scaler" in checkpoint:
            self.loss_scaler.load_state_dict(checkpoint["loss_scaler"])
        self.it = int(checkpoint.get("it", 0))
        self.start_epoch = self.epoch = int(checkpoint.get("epoch", 0))
        self.best_it = checkpoint.get("best_it", 0)
        self.best_eval_acc = checkpoint.get("best_eval_acc", 0.0)
        if "aim_run_hash" in checkpoint:
            self.aim_run_hash = checkpoint["aim_run_hash"]
        self.restore_host_state(checkpoint)
        self.nonfinite_skipped = int(checkpoint.get("nonfinite_skipped", 0))
        if "rng_state" in checkpoint:
            self._pending_rng = checkpoint["rng_state"]
        self.print_fn(f"model loaded: {load_path}")
        return checkpoint

    def _check_compatible(self, checkpoint: dict, path: str) -> None:
        state = strip_module_prefix(checkpoint["model"])
        own = unwrap(self.model).state_dict()
        for key in own.keys() & state.keys():
            if own[key].shape != state[key].shape:
                if key.split(".")[-2:-1] and key.split(".")[-2] in ("classifier", "fc", "head"):
                    raise UserError(f"checkpoint '{path}' was trained for {state[key].shape[0]} classes but this "
                                    f"run has {own[key].shape[0]}; expected a checkpoint of the same dataset")
                raise UserError(f"checkpoint '{path}' does not fit this model ('{key}' has shape "
                                f"{tuple(state[key].shape)}, expected {tuple(own[key].shape)})")
        missing = own.keys() - state.keys()
        if missing:
            raise UserError(f"checkpoint '{path}' does not fit this model ({len(missing)} missing keys, first "
                            f"'{sorted(missing)[0]}'); expected one written by the same --algorithm and --net")

    def restore_host_state(self, checkpoint: dict) -> None:
        """Put every extra tensor a host saved back where it lives: on a hook or on the algorithm."""
        for key, value in checkpoint.items():
            if key in BASE_CHECKPOINT_KEYS or key in RUNTIME_CHECKPOINT_KEYS or key.startswith("leaf_"):
                continue
            value = to_device(value, self.device)
            owners = [h for h in self.hooks_dict.values() if hasattr(h, key)] or \
                ([self] if hasattr(self, key) else [])
            for owner in owners:
                setattr(owner, key, value)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a (Distributed)DataParallel wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


def strip_module_prefix(state: dict) -> dict:
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def read_checkpoint(path: str) -> dict:
    """A checkpoint the command wrote, or a UserError naming what is wrong with it."""
    if not path or not os.path.isfile(path):
        raise UserError(f"checkpoint '{path}' does not exist; expected a .pth file written by semilearn train")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"checkpoint '{path}' is unreadable ({type(exc).__name__}); expected a .pth file "
                        f"written by semilearn train")
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise UserError(f"checkpoint '{path}' has no 'model' entry; expected a .pth file written by semilearn train")
    return checkpoint


_RUNTIME_CLASSES: dict = {}


def with_runtime(host: type) -> type:
    """``host`` with :class:`DeviceRuntime` in front (cached; idempotent)."""
    if issubclass(host, DeviceRuntime):
        return host
    if host not in _RUNTIME_CLASSES:
        _RUNTIME_CLASSES[host] = type(host.__name__, (DeviceRuntime, host),
                                      {"__module__": host.__module__, "__doc__": host.__doc__})
    return _RUNTIME_CLASSES[host]
