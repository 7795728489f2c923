"""A finished run: its folder's files, its algorithm or model loaded back, evaluated.

``semilearn eval`` and ``report`` rebuild the whole algorithm (:func:`load_algorithm`:
the run's flags from the checkpoint, the datasets, the EMA weights);
``semilearn predict`` rebuilds the network alone (:func:`load_predictor`), with
no dataset loaded, through the same builder training uses.
"""
from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import read_checkpoint, strip_module_prefix
from .errors import UserError
from .flags import RUN_START_KEYS, base_parser

LATEST_CHECKPOINT = "latest_model.pth"
BEST_CHECKPOINT = "model_best.pth"
CHECKPOINT_FILES = (LATEST_CHECKPOINT, BEST_CHECKPOINT)
RESULTS_FILE = "results.json"
# run flags that describe how a run was started, not the model it trained (and where it ran)
NOT_MODEL_KEYS = RUN_START_KEYS + ("distributed", "gpu")


def default_checkpoint(run_dir: str) -> str:
    """The checkpoint a run folder is read from: the latest, else the best."""
    for name in CHECKPOINT_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            return path
    raise UserError(f"run folder '{run_dir}' has no {' or '.join(CHECKPOINT_FILES)}; expected the folder of a "
                    f"semilearn train run (or pass --load_path)")


def refuse_run_folder(save_path: str, *, resume: bool, overwrite: bool, checkpoint: str) -> None:
    """UserError unless ``save_path`` may be used: resuming needs ``checkpoint``; a non-empty
    folder needs --overwrite.  Checked before anything is written."""
    if resume:
        if not os.path.isfile(checkpoint):
            raise UserError(f"--resume: checkpoint '{checkpoint}' does not exist; expected the checkpoint of "
                            f"an earlier run in '{save_path}' (or pass --load_path)")
    elif os.path.isdir(save_path) and os.listdir(save_path) and not overwrite:
        raise UserError(f"run folder '{save_path}' already exists; pass --overwrite to replace it, "
                        f"--resume to continue it, or choose another --save_name")


# ---- the run's configuration -------------------------------------------------------------
def saved_run_args(checkpoint: dict, load_path: str) -> dict:
    """The run's flags: the checkpoint's ``args``, or those of the run folder."""
    saved = checkpoint.get("args")
    if isinstance(saved, dict) and saved.get("algorithm"):
        return dict(saved)
    run_dir = os.path.dirname(os.path.abspath(load_path))
    for name in ("args.json", "config.json"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    data = json.load(f)
                if isinstance(data, dict) and data.get("algorithm"):
                    return data
            except (OSError, ValueError):
                pass
    for name in ("config.yaml", "config.yml"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            from .arguments import load_yaml
            data = load_yaml(path)
            if data.get("algorithm"):
                return data
    for name in CHECKPOINT_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isfile(path) and os.path.abspath(path) != os.path.abspath(load_path):
            try:
                other = read_checkpoint(path)
            except UserError:
                continue
            if isinstance(other.get("args"), dict) and other["args"].get("algorithm"):
                return dict(other["args"])
    raise UserError(f"checkpoint '{load_path}' records no run arguments and its folder has none (args.json, "
                    f"config.yaml or another checkpoint); expected a checkpoint written by semilearn train")


def run_args(saved: dict) -> Namespace:
    """Every ``semilearn train`` flag at its default, then the run's own values."""
    args = base_parser("semilearn predict").parse_args([])
    for key, value in saved.items():
        if key not in NOT_MODEL_KEYS:
            setattr(args, key, value)
    args.pretrain_path, args.use_pretrain = "", False
    return args


# ---- the whole algorithm (eval, report) ----------------------------------------------------
def load_algorithm(load_path: str, overrides: Sequence[str] = ()):
    """The algorithm of the run that wrote ``load_path``, its weights loaded, ready to evaluate."""
    from .build import algorithm_from_argv
    from .logs import run_logger

    checkpoint = read_checkpoint(load_path)
    saved = dict(checkpoint.get("args") or {})
    if "algorithm" not in saved:
        raise UserError(f"checkpoint '{load_path}' records no run arguments; expected one written by semilearn train")
    for key in RUN_START_KEYS:
        saved.pop(key, None)
    saved = {**recorded_leaf_flags(checkpoint), **saved}
    argv = ["--algorithm", saved["algorithm"], "--progress", "false", "--use_tensorboard", "false", *overrides]
    algorithm = algorithm_from_argv(argv, run_logger("eval", None, "WARNING"), prog="semilearn eval",
                                    trusted=saved)
    algorithm.load_model(load_path)
    return algorithm


class ProgressLoader:
    """A data loader seen through a tqdm bar (stderr); everything else delegated."""

    def __init__(self, loader, desc: str = "evaluate", enabled: bool = True):
        self.loader, self.desc, self.enabled = loader, desc, enabled

    def __iter__(self):
        from tqdm.auto import tqdm

        return iter(tqdm(self.loader, desc=self.desc, total=len(self.loader), unit="batch", leave=False,
                         file=sys.stderr, mininterval=1.0, disable=not self.enabled))

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def evaluate_with_progress(algorithm, dest: str = "eval", progress: bool = True) -> dict:
    """``algorithm.evaluate(dest)`` with a progress bar over its loader."""
    loaders = algorithm.loader_dict
    original = loaders[dest]
    loaders[dest] = ProgressLoader(original, f"evaluate ({dest})", progress)
    try:
        return algorithm.evaluate(dest)
    finally:
        loaders[dest] = original


# ---- the network alone (predict, export) ---------------------------------------------------
def infer_num_classes(state: dict) -> Optional[int]:
    for key in sorted(state):
        parts = key.split(".")
        if len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in ("classifier", "fc", "head") \
                and state[key].dim() == 2:
            return int(state[key].shape[0])
    return None


def recorded_leaf_flags(checkpoint: dict) -> dict:
    """``--leaf_*`` values for a LEAF checkpoint whose run arguments predate a flag: the field of
    the LEAF configuration it recorded, else the configuration's default (what runs did before the
    field existed, e.g. a fixed head scale before ``--leaf_learn_scale``). Empty for other runs."""
    from .layers import LeafConfig

    recorded = checkpoint.get("leaf_config")
    if not isinstance(recorded, dict):
        return {}
    return {f"leaf_{k}": v for k, v in LeafConfig.recorded_fields(recorded).items()}


def saved_leaf_config(checkpoint: dict):
    """The LEAF configuration a checkpoint records, or None."""
    from .layers import LeafConfig

    saved = checkpoint.get("leaf_config")
    if not isinstance(saved, dict):
        return None
    return LeafConfig(**LeafConfig.recorded_fields(saved))


def build_model_from_checkpoint(args: Namespace, checkpoint: dict, load_path: str) -> nn.Module:
    """The run's network with the checkpoint's EMA weights (eval mode, CPU)."""
    from semilearn.core.utils import ALGORITHMS

    from .algorithms import algorithm_class, is_leaf_algorithm, network_for

    state = checkpoint.get("ema_model") or checkpoint.get("model")
    if not isinstance(state, dict):
        raise UserError(f"checkpoint '{load_path}' holds no model weights; expected one written by semilearn train")
    state = strip_module_prefix(state)
    num_classes = int(getattr(args, "num_classes", None) or infer_num_classes(state) or 0)
    if num_classes <= 0:
        raise UserError(f"checkpoint '{load_path}' does not say how many classes it has")
    args.num_classes = num_classes
    leaf = is_leaf_algorithm(args.algorithm) if args.algorithm in ALGORITHMS else "leaf_config" in checkpoint
    leaf_cfg = saved_leaf_config(checkpoint) if leaf else None
    if leaf and leaf_cfg is None:
        algorithm_class(args.algorithm)  # the flags give the configuration: a UserError if it is unknown
    model = network_for(args, leaf_cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        sub = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        try:
            if leaf or not sub:
                raise exc
            model.load_state_dict(sub)  # a host that wraps the backbone (CoMatch, SimMatch): its logits are the backbone's
        except RuntimeError:
            first = str(exc).strip().splitlines()[1:2] or [str(exc)]
            raise UserError(f"checkpoint '{load_path}' does not fit net {args.net} of algorithm {args.algorithm} "
                            f"({first[0].strip()[:160]}); expected a checkpoint written by semilearn train")
    return model.eval()


@dataclass
class Predictor:
    """A trained run, ready to classify PIL images."""

    model: nn.Module
    transform: Callable
    class_names: List[str]
    args: Namespace
    device: torch.device

    @torch.no_grad()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.model(batch.to(self.device))
        logits = out["logits"] if isinstance(out, dict) else out
        return torch.softmax(logits.double(), dim=-1).cpu()

    @torch.no_grad()
    def classify(self, images: Sequence) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """(``[N, C]`` float64 probabilities, expert level -> ``[N, K]`` gate weights) of PIL
        images; a LEAF network gives the gates of each level it has, other nets none."""
        out = self.model(torch.stack([self.transform(img) for img in images]).to(self.device))
        logits = out["logits"] if isinstance(out, dict) else out
        gates = (out.get("leaf_gates") or {}) if isinstance(out, dict) else {}
        return (torch.softmax(logits.double(), dim=-1).cpu().numpy(),
                {level: g.double().cpu().numpy() for level, g in gates.items() if g is not None})


def load_predictor(load_path: str, device: str = "auto", data_dir: Optional[str] = None, gpu=None) -> Predictor:
    """Everything ``semilearn predict`` needs from a checkpoint."""
    from .data.access import class_names_for, eval_transform_for
    from .runtime import resolve_device

    checkpoint = read_checkpoint(load_path)
    args = run_args(saved_run_args(checkpoint, load_path))
    if data_dir is not None:
        args.data_dir = data_dir
    dev = resolve_device(Namespace(device=device, gpu=gpu))
    model = build_model_from_checkpoint(args, checkpoint, load_path).to(dev)
    transform = eval_transform_for(args)
    return Predictor(model, transform, class_names_for(args, args.num_classes), args, dev)
