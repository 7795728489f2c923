"""The runtime placed in front of any semilearn algorithm: device, AMP, hooks, the
resumable training loop, evaluation and checkpoints, each delegated to its module."""
from __future__ import annotations

import os
import warnings
from inspect import signature

import torch

from ..checkpoint import atomic_save, read_checkpoint, set_rng_state
from ..data import get_dataset_spec
from ..flags import RuntimeOptions, complete_args
from ..history import HistoryHook
from . import checkpointing
from .device import accelerate, resolve_device, to_channels_last, to_device
from .diagnostics import PseudoLabelDiagnosticsHook
from .evaluation import evaluate_algorithm
from .hooks import (BufferEMAHook, CadenceCheckpointHook, CadenceEvaluationHook, ConsoleLoggingHook, DebiasedEMAHook,
                    DeviceParamUpdateHook, ProgressBarHook, WallClockTimerHook, ema_start_warning, insert_hook_after,
                    replace_hook)
from .loaders import resumable_train_loaders, start_epoch_at


class DeviceRuntime:
    """Mixin placed before an ``AlgorithmBase`` subclass; see :func:`with_runtime`."""

    def __init__(self, args, net_builder, tb_log=None, logger=None, **kwargs):
        complete_args(args)  # a namespace from USB's own get_config lacks the plug-in's flags
        self.runtime_opts = RuntimeOptions.of(args)
        self.device = resolve_device(args)
        self.nonfinite_skipped = 0
        self._pending_rng = None
        self._saved_ema_buffers = None
        self._in_step = False
        self.step_capture: dict = {}
        with warnings.catch_warnings():  # semilearn makes a (deprecated) CUDA GradScaler even on the CPU
            warnings.filterwarnings("ignore", message=".*GradScaler.*")
            super().__init__(args, net_builder, tb_log, logger, **kwargs)
        self.epoch = self.start_epoch
        # semilearn decides "first process of a node" by rank % ngpus_per_node: 0 GPUs on a CPU
        self.ngpus_per_node = max(1, int(self.runtime_opts.procs_per_node or self.ngpus_per_node or 1))
        self.model.to(self.device)
        self.ema_model.to(self.device)
        accelerate(self)

    # ---- data ---------------------------------------------------------------------------
    def set_dataset(self):
        spec = get_dataset_spec(self.args.dataset)
        if spec is None:
            return super().set_dataset()
        if self.distributed and self.rank != 0:
            torch.distributed.barrier()
        dataset_dict = spec.build(self.args, self.algorithm)
        if not self.runtime_opts.eval_only:  # an evaluated run keeps the sizes it trained with
            self.args.ulb_dest_len = len(dataset_dict["train_ulb"]) if dataset_dict["train_ulb"] is not None else 0
            self.args.lb_dest_len = len(dataset_dict["train_lb"])
            self.print_fn(f"unlabeled data number: {self.args.ulb_dest_len}, labeled data number "
                          f"{self.args.lb_dest_len}")
        if self.distributed and self.rank == 0:
            torch.distributed.barrier()
        return dataset_dict

    def set_data_loader(self):
        if self.dataset_dict is None:
            return None
        if self.runtime_opts.eval_only:
            from semilearn.core.utils import get_data_loader

            return {"eval": get_data_loader(self.args, self.dataset_dict["eval"], self.args.eval_batch_size,
                                            data_sampler=None, num_workers=self.args.num_workers, drop_last=False)}
        return resumable_train_loaders(self, super().set_data_loader())

    def train_step_inputs(self) -> list:
        """Names ``process_batch`` passes to ``train_step``."""
        return list(signature(self.train_step).parameters)

    def process_batch(self, input_args=None, **kwargs):
        names = input_args if input_args is not None else self.train_step_inputs()
        batch = {k: to_device(v, self.device) for k, v in kwargs.items() if k in names and v is not None}
        return to_channels_last(batch) if self.runtime_opts.channels_last else batch

    # ---- hooks --------------------------------------------------------------------------
    def call_hook(self, fn_name, hook_name=None, *args, **kwargs):
        """semilearn's ``call_hook``; what the host's mask and pseudo-labels were in a training
        step is kept in ``step_capture`` for the pseudo-label diagnostics."""
        result = super().call_hook(fn_name, hook_name, *args, **kwargs)
        if self._in_step and fn_name in ("masking", "gen_ulb_targets"):
            self.step_capture[fn_name] = result
        return result

    def set_hooks(self):
        super().set_hooks()
        replace_hook(self, "ParamUpdateHook", DeviceParamUpdateHook())
        replace_hook(self, "TimerHook", WallClockTimerHook())
        replace_hook(self, "LoggingHook", ConsoleLoggingHook())
        replace_hook(self, "EvaluationHook", CadenceEvaluationHook())
        replace_hook(self, "CheckpointHook", CadenceCheckpointHook())
        opts = self.runtime_opts
        if opts.ema_debias:
            replace_hook(self, "EMAHook", DebiasedEMAHook())
        if opts.ema_bn == "ema" or opts.ema_bn_compare:
            insert_hook_after(self, "EMAHook", "BufferEMAHook", BufferEMAHook(into_ema_model=opts.ema_bn == "ema"))
        self.register_hook(PseudoLabelDiagnosticsHook(), "PseudoLabelDiagnosticsHook", "LOW")
        self.register_hook(HistoryHook(), "HistoryHook", "LOWEST")
        if opts.progress:
            self.register_hook(ProgressBarHook(), "ProgressBarHook", "LOWEST")

    # ---- training loop ------------------------------------------------------------------
    def train(self):
        """semilearn's loop, resumable part-way through an epoch."""
        if not self.runtime_opts.ema_debias:
            warning = ema_start_warning(float(self.args.ema_m), self.num_train_iter)
            if warning:
                self.print_fn(warning)
        self.model.train()
        self.call_hook("before_run")
        for epoch in range(self.start_epoch, self.epochs):
            self.epoch = epoch
            if self.it >= self.num_train_iter:
                break
            self.call_hook("before_train_epoch")
            start_epoch_at(self.loader_dict, self.it - epoch * self.num_iter_per_epoch)
            iterator = iter(zip(self.loader_dict["train_lb"], self.loader_dict["train_ulb"]))
            if self._pending_rng is not None:  # after the loaders drew their seeds, as uninterrupted
                set_rng_state(self._pending_rng)
                self._pending_rng = None
            for data_lb, data_ulb in iterator:
                if self.it >= self.num_train_iter:
                    break
                self.call_hook("before_train_step")
                self._in_step = True
                batch = self.process_batch(**data_lb, **data_ulb)
                self.step_capture = {"idx_ulb": to_device(data_ulb.get("idx_ulb"), self.device)}
                self.out_dict, self.log_dict = self.train_step(**batch)
                self.call_hook("after_train_step")
                self._in_step = False
                self.it += 1
                if self.it >= self.num_train_iter:  # before the next batch is drawn: the saved RNG state
                    break                           # is then the one an uninterrupted run continues from
            self.call_hook("after_train_epoch")
        self.call_hook("after_run")

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, eval_dest="eval", out_key="logits", return_logits=False):
        """semilearn's metrics on ``eval_dest`` with the EMA weights, on any device (see
        :func:`~leaf_plugin.runtime.evaluation.evaluate_algorithm`)."""
        return evaluate_algorithm(self, eval_dest, out_key, return_logits)

    # ---- checkpoints --------------------------------------------------------------------
    def get_save_dict(self):
        return checkpointing.add_runtime_state(super().get_save_dict(), self)

    def save_model(self, save_name, save_path):
        path = os.path.join(save_path, save_name)
        atomic_save(self.get_save_dict(), path)
        self.print_fn(f"model saved: {path}")

    def check_checkpoint(self, checkpoint: dict, load_path: str) -> None:
        """UserError unless ``checkpoint`` fits this run's model (subclasses add their own checks)."""
        checkpointing.check_compatible(self.model, checkpoint, load_path)

    def load_model(self, load_path):
        """:meth:`restore` from the checkpoint file ``load_path``. Hosts' own ``load_model`` call
        ``.cuda()``, so this one replaces them."""
        return self.restore(read_checkpoint(load_path), load_path)

    def restore(self, checkpoint: dict, load_path: str) -> dict:
        """What ``AlgorithmBase.load_model`` restores from a checkpoint already read, then host
        state (mask hooks' tensors, algorithm attributes) put back generically on this device,
        then the runtime state."""
        self.check_checkpoint(checkpoint, load_path)
        checkpointing.restore_training_state(self, checkpoint)
        checkpointing.restore_host_state(self, checkpoint)
        self.nonfinite_skipped = int(checkpoint.get("nonfinite_skipped", 0))
        self._saved_ema_buffers = checkpoint.get("ema_buffers")
        if "rng_state" in checkpoint:
            self._pending_rng = checkpoint["rng_state"]
        self.print_fn(f"model loaded: {load_path}")
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
