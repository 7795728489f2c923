"""Which model ``predict`` and ``serve`` use, and how it describes itself.

A checkpoint of ``semilearn train`` (or its run folder), a file of ``semilearn export``, or, when
neither is given, the model shipped in ``benchmarks/checkpoints/`` (its ONNX export, so that no
torch is imported; its sidecar JSON says which run it is and its measured accuracy).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_DIR = os.path.join(REPO, "benchmarks", "checkpoints")
SHIPPED_NAME = "ferplus_leaf_fixmatch_s0"


@dataclass
class LoadedModel:
    """A predictor (``.classify``, ``.class_names``, ...) and what it is (``/api/model``)."""

    predictor: Any
    info: Dict[str, Any]

    def describe(self) -> str:
        """One line: the file, what it was trained as and, for the shipped model, its accuracy."""
        i = self.info
        what = f"{i['kind']} {i['file']} ({i.get('algorithm') or 'unknown algorithm'} on " \
               f"{i.get('dataset') or 'unknown data'}, {len(i['class_names'])} classes, {i['input_size']} px input"
        shipped = i.get("shipped")
        if shipped:
            acc = shipped["accuracy"]
            what += f"; {acc['split']} top-1 {100 * acc['top1']:.2f} %"
        return ("the shipped model: " if shipped else "") + what + ")"


def shipped_paths() -> Dict[str, str]:
    """The shipped model's files: sidecar JSON, ONNX export, checkpoint."""
    base = os.path.join(SHIPPED_DIR, SHIPPED_NAME)
    return {"sidecar": base + ".json", "onnx": base + ".onnx", "checkpoint": base + ".pth"}


def read_sidecar() -> dict:
    path = shipped_paths()["sidecar"]
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(f"no model given and the shipped model's '{path}' is unreadable ({type(exc).__name__}); "
                        f"expected --load_path (a checkpoint or run folder) or --model (an export)")


def checkpoint_of(load_path: str) -> str:
    """``load_path`` itself, or the checkpoint a run folder is read from."""
    if os.path.isdir(load_path):
        from ..runs import default_checkpoint

        return default_checkpoint(load_path)
    return load_path


def exported_model(path: str, device: str) -> LoadedModel:
    from .exported import load_exported

    predictor = load_exported(path, device)
    meta = predictor.meta
    info = {"kind": meta.get("format", "onnx"), "file": os.path.abspath(path), "class_names": predictor.class_names,
            "input_size": predictor.input_size, "algorithm": meta.get("algorithm"), "net": meta.get("net"),
            "dataset": meta.get("dataset"), "leaf": bool(meta.get("leaf")),
            "gate_levels": list(predictor.gate_outputs), "checkpoint": meta.get("checkpoint")}
    return LoadedModel(predictor, info)


def checkpoint_model(load_path: str, device: str, data_dir: Optional[str], gpu) -> LoadedModel:
    from ..runs import load_predictor

    path = checkpoint_of(load_path)
    predictor = load_predictor(path, device, data_dir, gpu)
    args, model = predictor.args, predictor.model
    levels = [level for level in ("semantic", "instance") if getattr(model, level, None) is not None]
    info = {"kind": "checkpoint", "file": os.path.abspath(path), "class_names": list(predictor.class_names),
            "input_size": int(args.img_size), "algorithm": args.algorithm, "net": args.net, "dataset": args.dataset,
            "leaf": type(model).__name__ == "LeafNet", "gate_levels": levels, "checkpoint": os.path.abspath(path)}
    return LoadedModel(predictor, info)


def load_model(load_path: Optional[str] = None, model: Optional[str] = None, device: str = "auto",
               data_dir: Optional[str] = None, gpu=None) -> LoadedModel:
    """The model of ``--load_path`` or ``--model``; the shipped one when neither is given."""
    if load_path is not None and model is not None:
        raise UserError("both --load_path and --model given; expected one of them (or neither, for the shipped "
                        "model)")
    if model is not None:
        return exported_model(model, device)
    if load_path is not None:
        return checkpoint_model(load_path, device, data_dir, gpu)
    sidecar = read_sidecar()
    loaded = exported_model(shipped_paths()["onnx"], device)
    loaded.info["shipped"] = sidecar
    return loaded
