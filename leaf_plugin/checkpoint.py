"""Checkpoint files: atomic writes, the one reader of ``.pth`` files, and the random-number
state that exact resume needs.  Below every other layer but ``errors``: nets, runs and
commands all read checkpoints through :func:`load_pth`."""
from __future__ import annotations

import os
import random
import tempfile

import numpy as np
import torch

from .errors import UserError


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file in the same directory, flush + fsync, then
    rename over ``path``: a crash at any point leaves the previous file intact."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rng_state() -> dict:
    """Python, numpy and torch (CPU and, when present, CUDA) generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_pth(path: str, what: str, expected: str) -> object:
    """``torch.load`` of ``path`` on the CPU, or a UserError naming ``what`` it is (e.g.
    "checkpoint 'x.pth'") and what was ``expected``, for a missing or unreadable file."""
    if not path or not os.path.isfile(path):
        raise UserError(f"{what} '{path}' does not exist; expected {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"{what} '{path}' is unreadable ({type(exc).__name__}); expected {expected}")


def read_checkpoint(path: str) -> dict:
    """A checkpoint ``semilearn train`` wrote, or a UserError naming what is wrong with it."""
    expected = "a .pth file written by semilearn train"
    checkpoint = load_pth(path, "checkpoint", expected)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise UserError(f"checkpoint '{path}' has no 'model' entry; expected {expected}")
    return checkpoint


def strip_module_prefix(state: dict) -> dict:
    """Keys without the ``module.`` prefixes (Distributed)DataParallel adds, however nested."""
    out = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module."):]
        out[key] = value
    return out
