"""A finished run: its folder's files, read back once (:func:`open_run`), as an algorithm or a network.

``semilearn eval`` and ``report`` rebuild the algorithm with the evaluation split only
(:func:`load_algorithm`); ``predict`` and ``export`` rebuild the network alone
(:func:`load_predictor`), with no dataset loaded, through the same builder training uses.
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
from .flags import RUN_START_KEYS

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


# ---- the one reader of a finished run ------------------------------------------------------
@dataclass
class SavedRun:
    """A checkpoint ``semilearn train`` wrote, read once: its contents and the run's arguments
    (every ``semilearn train`` flag: the run's values, then the overrides given)."""

    path: str
    checkpoint: dict
    args: Namespace


def open_run(load_path: str, overrides: Sequence[str] = (), prog: str = "semilearn eval") -> SavedRun:
    """The one way every command loads a finished run: ``load_path`` (a checkpoint, or a run
    folder: its latest checkpoint) read once; the run's arguments from it (or, for a checkpoint
    that records none, from its folder) parsed as ``semilearn train`` parses a config file,
    ``overrides`` (flags such as ``--data_dir``, ``--device``) on top."""
    from .arguments import parse_train_args

    if os.path.isdir(load_path):
        load_path = default_checkpoint(load_path)
    checkpoint = read_checkpoint(load_path)
    saved = {k: v for k, v in saved_run_args(checkpoint, load_path).items() if k not in NOT_MODEL_KEYS}
    saved = {**recorded_leaf_flags(checkpoint), **saved}
    argv = ["--algorithm", saved["algorithm"], "--progress", "false", "--use_tensorboard", "false", *overrides]
    args = parse_train_args([str(a) for a in argv], prog=prog, trusted=saved)
    for key, value in saved.items():  # what the run found out (class names of an image tree, split sizes)
        if not hasattr(args, key):
            setattr(args, key, value)
    return SavedRun(load_path, checkpoint, args)


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


def recorded_leaf_flags(checkpoint: dict) -> dict:
    """``--leaf_*`` values for a LEAF checkpoint whose run arguments predate a flag: the field of
    the LEAF configuration it recorded, else the configuration's default (what runs did before the
    field existed, e.g. a fixed head scale before ``--leaf_learn_scale``). Empty for other runs."""
    from .layers import LeafConfig

    recorded = checkpoint.get("leaf_config")
    if not isinstance(recorded, dict):
        return {}
    return {f"leaf_{k}": v for k, v in LeafConfig.recorded_fields(recorded).items()}


# ---- the whole algorithm (eval, report) ----------------------------------------------------
def load_algorithm(run: SavedRun, training_data: bool = False):
    """The algorithm of ``run``, its weights loaded, ready to evaluate. Only the evaluation split
    is built (no labeled/unlabeled split, no training loaders), unless ``training_data`` is
    asked for or ``--ema_bn recompute`` needs training batches to re-estimate the EMA model's
    statistics."""
    from .arguments import build_algorithm
    from .logs import run_logger

    run.args.eval_only = not training_data and run.args.ema_bn != "recompute"
    algorithm = build_algorithm(run.args, run_logger("eval", None, "WARNING"))
    algorithm.restore(run.checkpoint, run.path)
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
def build_network(run: SavedRun) -> nn.Module:
    """The run's network with the checkpoint's EMA weights (eval mode, CPU)."""
    from .algorithms import is_leaf_algorithm, network_for
    from .layers import LeafConfig

    state = run.checkpoint.get("ema_model") or run.checkpoint.get("model")
    if not isinstance(state, dict):
        raise UserError(f"checkpoint '{run.path}' holds no model weights; expected one written by semilearn train")
    state = strip_module_prefix(state)
    args = run.args
    recorded = run.checkpoint.get("leaf_config")
    leaf_cfg = LeafConfig(**LeafConfig.recorded_fields(recorded)) if isinstance(recorded, dict) else None
    leaf = is_leaf_algorithm(args.algorithm)
    model = network_for(args, leaf_cfg if leaf else None)
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
            raise UserError(f"checkpoint '{run.path}' does not fit net {args.net} of algorithm {args.algorithm} "
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

    @property
    def input_size(self) -> int:
        """The side of the square images the network reads (as exported predictors say it)."""
        return int(self.args.img_size)

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
    """Everything ``semilearn predict`` and ``export`` need from a checkpoint (:func:`open_run`)."""
    from .data.access import class_names_for, eval_transform_for
    from .runtime import resolve_device

    run = open_run(load_path, ["--data_dir", data_dir] if data_dir is not None else [], prog="semilearn predict")
    dev = resolve_device(Namespace(device=device, gpu=gpu))
    model = build_network(run).to(dev)
    return Predictor(model, eval_transform_for(run.args), class_names_for(run.args, run.args.num_classes), run.args,
                     dev)
