"""Loading a local backbone checkpoint into a semilearn net (``--pretrain_path``).

Accepted files: a plain state dict (torchvision / timm / ``semilearn pretrain``'s
``backbone.pth``), or one stored under ``'backbone'``, ``'state_dict'`` (the
MS-Celeb-1M face-recognition ResNet-18 LEAF starts from), ``'ema_model'`` or
``'model'`` (a ``semilearn train`` checkpoint); ``module.`` prefixes are
stripped, and keys are aligned with the net when they differ by one leading
component (``backbone.`` of a LEAF model, ``model.`` of a timm wrapper).  The
classifier head is never loaded: it stays freshly initialised for the run's
number of classes.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from ..checkpoint import load_pth, strip_module_prefix
from ..errors import UserError

HEAD_NAMES = ("classifier", "fc", "head")
STATE_KEYS = ("backbone", "state_dict", "ema_model", "model")


def read_state_dict(path: str) -> dict:
    """The tensor state dict stored in ``path`` (see the module doc), ``module.`` stripped."""
    obj = load_pth(path, "--pretrain_path", "a torch checkpoint file")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    for key in STATE_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"--pretrain_path '{path}' holds no state dict of tensors; expected a plain state dict "
                        f"or one under 'state_dict' / 'model'")
    return strip_module_prefix(obj)


def _is_head(key: str) -> bool:
    return key.split(".")[0] in HEAD_NAMES


def align_keys(state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``state`` renamed to match ``own`` best: as it is, the subtree under one leading
    component (``backbone.conv1.weight`` -> ``conv1.weight``, other keys dropped), or with one of ``own``'s
    leading components added (``conv1.weight`` -> ``model.conv1.weight``)."""
    def score(mapped):
        return sum(1 for k in mapped if k in own)

    best, best_score = state, score(state)
    firsts = {k.split(".")[0] for k in state if "." in k}
    for first in sorted(firsts):
        n = len(first) + 1  # the subtree under ``first.`` (a LEAF model's backbone) alone
        mapped = {k[n:]: v for k, v in state.items() if k.startswith(first + ".")}
        if score(mapped) > best_score:
            best, best_score = mapped, score(mapped)
    for first in sorted({k.split(".")[0] for k in own if "." in k}):
        mapped = {f"{first}.{k}": v for k, v in state.items()}
        if score(mapped) > best_score:
            best, best_score = mapped, score(mapped)
    return best


def match_state_dict(model: nn.Module, state: Dict[str, torch.Tensor]) -> Tuple[dict, List[str], List[str]]:
    """(what to load, missing backbone keys, unexpected or mis-shaped keys) for ``state``
    into ``model``, the classifier head left out on both sides."""
    own = model.state_dict()
    state = align_keys(state, own)
    keep, unexpected = {}, []
    for k, v in state.items():
        if _is_head(k):
            continue  # the file's head (e.g. torchvision's fc): re-initialised for this run
        if k not in own:
            if any(part in HEAD_NAMES for part in k.split(".")):
                continue  # a head nested in the source model (timm's head.fc)
            unexpected.append(k)
        elif own[k].shape != v.shape:
            unexpected.append(k)
        else:
            keep[k] = v
    missing = [k for k in own if k not in keep and not _is_head(k) and not k.endswith("num_batches_tracked")]
    return keep, missing, unexpected


def load_pretrained_backbone(model: nn.Module, path: str, strict: bool = True) -> tuple:
    """Load ``path`` into ``model`` except its classifier head (kept as initialised for
    the number of classes).  Returns (missing, unexpected) key lists; with
    ``strict`` any missing/unexpected backbone key is a UserError, and nothing is loaded."""
    keep, missing, unexpected = match_state_dict(model, read_state_dict(path))
    if not keep:
        raise UserError(f"--pretrain_path '{path}' shares no weights with net {type(model).__name__} "
                        f"({len(missing)} missing and {len(unexpected)} unexpected keys); expected a checkpoint "
                        f"of the same architecture")
    if strict and (missing or unexpected):
        first = (missing + unexpected)[0]
        raise UserError(f"--pretrain_path '{path}' does not match the backbone: {len(missing)} missing and "
                        f"{len(unexpected)} unexpected or mis-shaped keys (first: '{first}'); pass "
                        f"--pretrain_strict false to load the {len(keep)} that match")
    model.load_state_dict(keep, strict=False)
    return missing, unexpected
