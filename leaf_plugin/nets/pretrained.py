"""Loading a local backbone checkpoint into a semilearn net."""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from ..errors import UserError

HEAD_NAMES = ("classifier", "fc", "head")


def read_state_dict(path: str) -> dict:
    """The tensor state dict stored in ``path``: a plain state dict, or one under
    'state_dict' / 'model' / 'backbone', with ``module.`` prefixes stripped."""
    if not os.path.isfile(path):
        raise UserError(f"--pretrain_path '{path}' does not exist; expected a checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"--pretrain_path '{path}' is not a readable torch checkpoint ({type(exc).__name__})")
    for key in ("backbone", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"--pretrain_path '{path}' holds no state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def load_pretrained_backbone(model: nn.Module, path: str, strict: bool = True) -> tuple:
    """Load ``path`` into ``model`` except its classifier head (re-initialised for
    the number of classes).  Returns (missing, unexpected) key lists; with
    ``strict`` any missing/unexpected backbone key is a UserError."""
    state = read_state_dict(path)
    own = model.state_dict()
    is_head = lambda k: k.split(".")[0] in HEAD_NAMES
    state = {k: v for k, v in state.items() if not is_head(k)}
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in mismatched}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not is_head(k)]
    unexpected = list(result.unexpected_keys) + mismatched
    if strict and (missing or unexpected):
        raise UserError(f"--pretrain_path '{path}' does not match the backbone: {len(missing)} missing and "
                        f"{len(unexpected)} unexpected or mis-shaped keys (first: "
                        f"{(missing + unexpected)[0]}); pass --pretrain_strict false to load what matches")
    return missing, unexpected
