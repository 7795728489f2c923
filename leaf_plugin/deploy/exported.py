"""Predictors for exported models (ONNX through onnxruntime, TorchScript), with the
interface of :class:`leaf_plugin.runs.Predictor`: ``.transform``, ``.class_names``,
``.probabilities(batch)``; the preprocessing comes from the JSON written beside the model."""
from __future__ import annotations

import json
import os
from typing import Callable, List, Sequence

import numpy as np
import torch

from ..errors import UserError


def standard_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """PIL image -> RGB, resized to ``size x size``, 0..1, normalised ``[3, size, size]`` tensor."""
    from torchvision import transforms as T

    return T.Compose([T.Lambda(lambda img: img.convert("RGB")), T.Resize((size, size)), T.ToTensor(),
                      T.Normalize(list(mean), list(std))])


def metadata_path(model_path: str) -> str:
    """``model.onnx`` -> ``model.onnx.json``."""
    return model_path + ".json"


def read_metadata(model_path: str) -> dict:
    path = metadata_path(model_path)
    if not os.path.isfile(path):
        raise UserError(f"'{model_path}' has no '{os.path.basename(path)}' beside it; expected the JSON that "
                        f"'semilearn export' writes with the model")
    try:
        with open(path) as f:
            meta = json.load(f)
        if not meta["class_names"] or len(meta["input"]["size"]) != 2:
            raise ValueError("no class names or no 2-d input size")
        meta["input"]["mean"], meta["input"]["std"]
        return meta
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"'{path}' is not the JSON 'semilearn export' writes ({type(exc).__name__}: {exc}); "
                        f"expected class_names and input.size/mean/std")


class ExportedPredictor:
    """An exported model, ready to classify PIL images."""

    def __init__(self, meta: dict, run: Callable[[np.ndarray], np.ndarray]):
        self.meta = meta
        self._run = run
        self.class_names: List[str] = [str(n) for n in meta["class_names"]]
        self.input_size = int(meta["input"]["size"][0])
        self.dynamic_batch = bool(meta.get("dynamic_batch", True))
        self.transform = standard_transform(self.input_size, meta["input"]["mean"], meta["input"]["std"])

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.detach().cpu().float().numpy()
        parts = [x] if self.dynamic_batch else [x[i:i + 1] for i in range(len(x))]
        return torch.from_numpy(np.concatenate([self._run(np.ascontiguousarray(p)) for p in parts]))

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(batch).double(), dim=-1)


def onnx_runner(path: str, device: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UserError(f"running an ONNX model needs onnxruntime ({exc}); expected it installed (see setup.cfg)")
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(path, providers=providers)
    except Exception as exc:
        raise UserError(f"onnxruntime cannot load '{path}' ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                        f"expected an ONNX file written by semilearn export")
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def torchscript_runner(path: str, device: str) -> Callable[[np.ndarray], np.ndarray]:
    dev = torch.device("cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
    try:
        module = torch.jit.load(path, map_location=dev).eval()
    except Exception as exc:
        raise UserError(f"cannot load TorchScript '{path}' ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
                        f"expected a file written by semilearn export --format torchscript")

    @torch.no_grad()
    def run(x: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(x).to(dev)).float().cpu().numpy()
    return run


def load_exported(path: str, device: str = "auto") -> ExportedPredictor:
    """The predictor of an exported model; its format from the JSON (else the file's extension)."""
    if not os.path.isfile(path):
        raise UserError(f"--model '{path}' does not exist; expected a .onnx or TorchScript file from semilearn export")
    meta = read_metadata(path)
    fmt = meta.get("format") or ("onnx" if path.lower().endswith(".onnx") else "torchscript")
    run = onnx_runner(path, device) if fmt == "onnx" else torchscript_runner(path, device)
    return ExportedPredictor(meta, run)
