"""Faster steps, chosen by flags: channels-last memory format (``--channels_last``),
``torch.compile`` of the training network (``--compile``) and mixed precision (``--amp``:
bf16 autocast on the CPU, semilearn's fp16 with a grad scaler on CUDA).  None of them
changes what a checkpoint holds: ``nn.Module.compile`` compiles in place, so the state
dict keeps its keys (no ``_orig_mod.`` prefix) and loads without the flag."""
from __future__ import annotations

import torch


def to_channels_last(batch: dict) -> dict:
    """Every 4-D tensor of a batch in channels-last memory format (values unchanged)."""
    return {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.dim() == 4 else v
            for k, v in batch.items()}


def cpu_autocast():
    """The autocast context of ``--amp`` on the CPU: bf16, which needs no loss scaling."""
    return torch.autocast("cpu", dtype=torch.bfloat16)


def accelerate(algorithm) -> None:
    """Apply the run's ``--channels_last``, ``--compile`` and (CPU) ``--amp`` to ``algorithm``."""
    opts = algorithm.runtime_opts
    if opts.channels_last:
        for model in (algorithm.model, algorithm.ema_model):
            model.to(memory_format=torch.channels_last)
    if opts.compile:
        algorithm.model.compile()
    if algorithm.device.type == "cpu" and algorithm.use_amp:
        # semilearn's GradScaler is CUDA-only; bf16 autocast needs no scaling on the CPU
        algorithm.use_amp = False
        algorithm.amp_cm = cpu_autocast
