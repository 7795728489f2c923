"""Export a trained run's EMA network to ONNX or TorchScript, with a JSON that describes it.

The graph takes ``input [N, 3, H, W]`` float32 (RGB, resized to ``H x W``, scaled to 0..1,
then ``(x - mean) / std``) and returns ``logits [N, C]`` (no softmax).  The network is
exported in eval mode, so LEAF's gates are deterministic (no gate noise) and batch norm
uses its running statistics.  ``<file>.json`` beside the model holds the class names, the
input size, channels, mean and std, the checkpoint and the git commit of this code.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..errors import UserError
from ..imagefiles import one_line
from .exported import load_exported, metadata_path, standard_transform

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
PARITY_TOLERANCE = 1e-3  # relative to the logits' scale: a larger gap means the export is wrong
GATE_LEVELS = ("semantic", "instance")  # LeafNet's expert levels, in the order of the gate outputs


class LogitsOnly(nn.Module):
    """The network, returning only its logits tensor (the runs' nets return a dict)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out["logits"] if isinstance(out, dict) else out


class LogitsAndGates(nn.Module):
    """A LEAF network returning ``(logits, gates of each level in GATE_LEVELS it has)``."""

    def __init__(self, model: nn.Module, levels: Sequence[str]):
        super().__init__()
        self.model, self.levels = model, tuple(levels)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(x)
        return (out["logits"], *(out["leaf_gates"][level] for level in self.levels))


def gate_levels(model: nn.Module) -> List[str]:
    """The expert levels a LEAF network has (their gates become extra outputs), else none."""
    return [level for level in GATE_LEVELS if getattr(model, level, None) is not None] \
        if type(model).__name__ == "LeafNet" else []


def export_module(model: nn.Module) -> Tuple[nn.Module, List[str]]:
    """(the module to trace, its output names): the logits, then ``gates_<level>`` per LEAF level."""
    levels = gate_levels(model)
    module = LogitsAndGates(model, levels) if levels else LogitsOnly(model)
    return module.cpu().eval(), ["logits", *(f"gates_{level}" for level in levels)]


def git_commit() -> Optional[str]:
    """The commit of this code's checkout (``+dirty`` with local changes), or None."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if not commit:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def preprocessing(predictor) -> dict:
    """Input size, mean and std of the run's test-time transform, checked to be exactly
    RGB -> resize -> to 0..1 -> normalise (what a consumer of the JSON reproduces)."""
    from PIL import Image

    from ..data.access import normalisation_of
    size = int(predictor.args.img_size)
    mean, std = normalisation_of(predictor.transform)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size + 7, size + 3, 3), dtype=np.uint8))
    reference = torch.from_numpy(standard_transform(size, mean, std)(picture))
    if not torch.allclose(predictor.transform(picture), reference, atol=1e-6):
        raise UserError(f"the test-time transform of dataset '{predictor.args.dataset}' is not resize + normalise, "
                        f"so the exported model's JSON cannot describe it; expected a run whose transform is")
    return {"size": [size, size], "channels": 3, "colour": "RGB (grey pictures: the grey value in all 3)",
            "layout": "NCHW", "dtype": "float32", "scale": "pixel / 255", "mean": list(mean), "std": list(std),
            "resize": "bilinear (PIL, antialiased) to size, no crop"}


def metadata(predictor, fmt: str, out: str, dynamic_batch: bool, load_path: str) -> dict:
    args = predictor.args
    levels = gate_levels(predictor.model)
    return {"format": fmt, "file": os.path.basename(out), "input_name": "input", "output_name": "logits",
            "output": "logits (apply softmax for probabilities)",
            "output_names": ["logits", *(f"gates_{level}" for level in levels)],
            "gate_outputs": {level: f"gates_{level}" for level in levels}, "dynamic_batch": dynamic_batch,
            "batch": None if dynamic_batch else 1, "input": preprocessing(predictor),
            "class_names": list(predictor.class_names), "num_classes": len(predictor.class_names),
            "algorithm": args.algorithm, "net": args.net, "dataset": args.dataset,
            "leaf": type(predictor.model).__name__ == "LeafNet",
            "checkpoint": os.path.abspath(load_path), "checkpoint_sha256": sha256_of(load_path),
            "git_commit": git_commit(), "torch": torch.__version__,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


@contextlib.contextmanager
def silent_stdout():
    """Standard output, Python's and the C++ one (file descriptor 1), sent nowhere."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(io.StringIO()):
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def export_onnx(module: nn.Module, example: torch.Tensor, out: str, dynamic_batch: bool,
                output_names: Sequence[str]) -> None:
    axes = {name: {0: "batch"} for name in ("input", *output_names)} if dynamic_batch else None
    torch.onnx.export(module, (example,), out, input_names=["input"], output_names=list(output_names),
                      dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)


def export_torchscript(module: nn.Module, example: torch.Tensor, out: str) -> None:
    traced = torch.jit.trace(module, (example,), check_trace=False)
    traced.save(out)


def export_model(predictor, fmt: str, out: str, load_path: str, dynamic_batch: bool = True) -> Tuple[dict, float]:
    """Write ``out`` and ``out.json``; returns the JSON's content and the max abs difference of
    the exported logits from the network's on random input.  A LEAF network's export also
    returns each level's gate weights (outputs ``gates_semantic``, ``gates_instance``).  A
    network the exporter cannot handle raises :class:`UserError` naming why."""
    import warnings

    if fmt not in FORMATS:
        raise UserError(f"--format is '{fmt}'; expected one of: {', '.join(FORMATS)}")
    meta = metadata(predictor, fmt, out, dynamic_batch, load_path)
    size = meta["input"]["size"]
    module, output_names = export_module(predictor.model)
    example = torch.randn(2 if dynamic_batch else 1, 3, *size)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:  # the exporters print their graph on failure: the reason goes into one line instead
        with warnings.catch_warnings(), torch.no_grad(), silent_stdout():
            warnings.simplefilter("ignore")
            (export_onnx(module, example, out, dynamic_batch, output_names) if fmt == "onnx"
             else export_torchscript(module, example, out))
    except Exception as exc:
        if os.path.isfile(out):
            os.remove(out)
        first = one_line((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]
        raise UserError(f"net {predictor.args.net} of algorithm {predictor.args.algorithm} cannot be exported to "
                        f"{fmt} ({type(exc).__name__}: {first}); expected a network of traceable tensor operations")
    with open(metadata_path(out), "w") as f:
        json.dump(meta, f, indent=2)
    return meta, check_parity(module, load_exported(out, "cpu"), example, fmt)


def check_parity(module: nn.Module, exported, example: torch.Tensor, fmt: str) -> float:
    """Max abs difference of the exported logits from the network's (gate weights are compared
    too); UserError when too large."""
    batch = torch.randn(3 if exported.dynamic_batch else 1, *example.shape[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = module(batch)
    want = want if isinstance(want, tuple) else (want,)
    got = exported.outputs(batch.numpy())
    gap = float(np.abs(got["logits"] - want[0].double().numpy()).max())
    if not gap <= PARITY_TOLERANCE * (1.0 + float(want[0].abs().max())):
        raise UserError(f"the {fmt} export gives logits {gap:.3g} away from the PyTorch network's; expected the same "
                        f"(a network whose output depends on Python control flow cannot be traced)")
    for name, reference in zip(exported.meta["output_names"][1:], want[1:]):
        gate_gap = float(np.abs(got[name] - reference.double().numpy()).max())
        if not gate_gap <= PARITY_TOLERANCE:
            raise UserError(f"the {fmt} export gives {name} {gate_gap:.3g} away from the PyTorch network's; "
                            f"expected the same gate weights")
    return gap
