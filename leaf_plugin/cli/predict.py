"""``semilearn predict``: classify image files with a checkpoint ``semilearn train`` wrote.

    semilearn predict --load_path RUN/model_best.pth face.jpg faces/ [--json] [--top K] [--device cpu]

The run's configuration comes from the checkpoint (its ``args``), or from
another checkpoint / ``args.json`` / ``config.yaml`` in the same folder.  The
model is rebuilt directly (no dataset is loaded for the net: a LEAF run's
backbone wrapped in :class:`leaf_plugin.layers.LeafNet`) and gets the EMA
weights.  Every image, grey or colour and of any size, goes through the run's
test-time transform (RGB, resized to the run's ``img_size``, the dataset's
normalisation).  Folders are read recursively (image files by extension) and
classified in batches; a file that cannot be read is reported on stderr, one
line each, and skipped, and the exit code is then 1.
"""
from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import UserError
from ..runtime import read_checkpoint
from .config import RUN_START_KEYS, OneLineParser, optional_bool

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# run flags that describe how a run was started, not the model it trained (and where it ran)
NOT_MODEL_KEYS = RUN_START_KEYS + ("distributed", "gpu")


def parser() -> OneLineParser:
    p = OneLineParser(prog="semilearn predict",
                      description="Classify images with a checkpoint written by 'semilearn train' (its EMA weights). "
                                  "Prints the top classes of each image with their probabilities.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders (read recursively)")
    p.add_argument("--load_path", required=True, help="checkpoint (.pth) written by semilearn train")
    p.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    p.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=64, help="images per forward pass")
    p.add_argument("--data_dir", default=None, help="where the run's dataset is, when its test-time transform needs "
                                                    "it (default: the run's own --data_dir)")
    optional_bool(p, "--progress", True, "show a progress bar over the batches")
    return p


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
            from .config import load_yaml
            data = load_yaml(path)
            if data.get("algorithm"):
                return data
    for name in ("latest_model.pth", "model_best.pth"):
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
    from .config import base_parser

    args = base_parser("semilearn predict").parse_args([])
    for key, value in saved.items():
        if key not in NOT_MODEL_KEYS:
            setattr(args, key, value)
    args.pretrain_path, args.use_pretrain = "", False
    return args


def is_leaf_run(args, checkpoint: dict) -> bool:
    from semilearn.core.utils import ALGORITHMS

    from ..algorithms.wrap import LeafAlgorithm

    cls = ALGORITHMS[args.algorithm] if args.algorithm in ALGORITHMS else None
    if cls is not None:
        return isinstance(cls, type) and issubclass(cls, LeafAlgorithm)
    return "leaf_config" in checkpoint


def leaf_config_of(args, checkpoint: dict):
    from ..algorithms import algorithm_class
    from ..algorithms.wrap import fill_leaf_defaults, leaf_config
    from ..layers import LeafConfig

    saved = checkpoint.get("leaf_config")
    if isinstance(saved, dict):
        known = set(LeafConfig.__dataclass_fields__)
        return LeafConfig(**{k: v for k, v in saved.items() if k in known})
    fill_leaf_defaults(args, algorithm_class(args.algorithm).get_argument())
    return leaf_config(args)


def infer_num_classes(state: dict) -> Optional[int]:
    for key in sorted(state):
        parts = key.split(".")
        if len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in ("classifier", "fc", "head") \
                and state[key].dim() == 2:
            return int(state[key].shape[0])
    return None


def build_model(args, checkpoint: dict, load_path: str) -> nn.Module:
    """The run's network with the checkpoint's EMA weights (eval mode, CPU)."""
    from ..nets.builders import net_builder_for
    from ..runtime import strip_module_prefix

    state = checkpoint.get("ema_model") or checkpoint.get("model")
    if not isinstance(state, dict):
        raise UserError(f"checkpoint '{load_path}' holds no model weights; expected one written by semilearn train")
    state = strip_module_prefix(state)
    num_classes = int(getattr(args, "num_classes", None) or infer_num_classes(state) or 0)
    if num_classes <= 0:
        raise UserError(f"checkpoint '{load_path}' does not say how many classes it has")
    args.num_classes = num_classes
    backbone = net_builder_for(args)(num_classes=num_classes)
    leaf = is_leaf_run(args, checkpoint)
    if leaf:
        from ..layers import LeafNet
        model = LeafNet(backbone, num_classes, leaf_config_of(args, checkpoint))
    else:
        model = backbone
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


def load_predictor(load_path: str, device: str = "auto", data_dir: Optional[str] = None, gpu=None) -> Predictor:
    """Everything ``semilearn predict`` needs from a checkpoint."""
    from ..data.access import class_names_for, eval_transform_for
    from ..runtime import resolve_device

    checkpoint = read_checkpoint(load_path)
    args = run_args(saved_run_args(checkpoint, load_path))
    if data_dir is not None:
        args.data_dir = data_dir
    dev = resolve_device(Namespace(device=device, gpu=gpu))
    model = build_model(args, checkpoint, load_path).to(dev)
    transform = eval_transform_for(args)
    return Predictor(model, transform, class_names_for(args, args.num_classes), args, dev)


# ---- inputs -------------------------------------------------------------------------------
def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(name).startswith(".")


def expand_inputs(inputs: Iterable[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(image files to classify, [(path, why)] that cannot be): folders are walked
    recursively for image files; named files are always tried."""
    files, failed = [], []
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_image_file(f))
        elif os.path.isfile(item):
            files.append(item)
        else:
            failed.append((item, "does not exist"))
    return files, failed


def read_image(path: str, transform: Callable) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return transform(img.convert("RGB"))


def one_line(text) -> str:
    return " ".join(str(text).split())


def format_text(path: str, top: List[Tuple[str, float]]) -> str:
    return f"{path}: " + ", ".join(f"{name} ({p:.3f})" for name, p in top)


def run_predict(argv: List[str]) -> int:
    from tqdm.auto import tqdm

    opts = parser().parse_intermixed_args(argv)
    if opts.top <= 0:
        raise UserError(f"--top is {opts.top}; expected a positive integer")
    if opts.batch_size <= 0:
        raise UserError(f"--batch_size is {opts.batch_size}; expected a positive integer")
    predictor = load_predictor(opts.load_path, opts.device, opts.data_dir, opts.gpu)
    names = predictor.class_names
    k = min(opts.top, len(names))
    files, failed = expand_inputs(opts.inputs)
    if not files and not failed:
        raise UserError(f"no image files in {', '.join(repr(i) for i in opts.inputs)}; expected image files "
                        f"({', '.join(IMAGE_EXTENSIONS)}) or folders holding them")

    def report_failure(path: str, why: str) -> None:
        tqdm.write(f"semilearn predict: cannot read '{path}': {why}", file=sys.stderr)

    for path, why in failed:
        report_failure(path, why)
    batches = [files[i:i + opts.batch_size] for i in range(0, len(files), opts.batch_size)]
    bar = tqdm(batches, desc="predict", unit="batch", file=sys.stderr, leave=False, mininterval=1.0,
               disable=not opts.progress or len(batches) < 2)
    for chunk in bar:
        tensors, paths = [], []
        for path in chunk:
            try:
                tensors.append(read_image(path, predictor.transform))
                paths.append(path)
            except Exception as exc:  # PIL: OSError, SyntaxError, ValueError, DecompressionBombError...
                failed.append((path, f"{type(exc).__name__}: {one_line(exc)}"))
                report_failure(path, failed[-1][1])
        if not tensors:
            continue
        probs = predictor.probabilities(torch.stack(tensors))
        values, indices = probs.topk(k, dim=-1)
        for path, p, vals, idx in zip(paths, probs, values.tolist(), indices.tolist()):
            top = [(names[i], v) for i, v in zip(idx, vals)]
            if opts.json:
                line = json.dumps({"path": path, "prediction": names[idx[0]], "index": idx[0],
                                   "top": [{"class": names[i], "index": i, "prob": v} for i, v in zip(idx, vals)],
                                   "probs": {n: float(q) for n, q in zip(names, p.tolist())}})
            else:
                line = format_text(path, top)
            if opts.progress and len(batches) > 1:
                tqdm.write(line, file=sys.stdout)
            else:
                print(line)
    bar.close()
    return 1 if failed else 0
