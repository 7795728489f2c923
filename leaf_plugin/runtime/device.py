"""Where a run computes: the torch device from ``--device`` / ``--gpu``, and moving batches there."""
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
