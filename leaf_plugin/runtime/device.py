"""Where and how fast a run computes: the torch device, moving batches there, and the speed flags.

The device comes from ``--device`` / ``--gpu``.  The speed flags: channels-last memory format
(``--channels_last``), ``torch.compile`` of the training network (``--compile``) and mixed
precision (``--amp``: bf16 autocast on the CPU, semilearn's fp16 with a grad scaler on CUDA).  None of them
changes what a checkpoint holds: ``nn.Module.compile`` compiles in place, so the state
dict keeps its keys (no ``_orig_mod.`` prefix) and loads without the flag."""
from __future__ import annotations

import torch

from ..errors import UserError


def resolve_device(args) -> torch.device:
    """``args.device`` (cpu | cuda | auto) and ``args.gpu`` -> a torch device."""
    want = str(args.device).lower()
    if want not in ("cpu", "cuda", "auto"):
        raise UserError(f"--device '{want}' is not valid; expected cpu, cuda or auto")
    if want == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; expected --device cpu or auto")
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    gpu = args.gpu
    return torch.device("cuda", int(gpu) if gpu is not None else torch.cuda.current_device())


def to_device(obj, device: torch.device):
    """Tensors (or a dict of them) moved to ``device``; anything else unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a (Distributed)DataParallel wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model.module, torch.nn.Module) else model


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
