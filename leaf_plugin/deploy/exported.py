"""Predictors for exported models (ONNX through onnxruntime, TorchScript), with the
interface of :class:`leaf_plugin.runs.Predictor`: ``.transform``, ``.class_names``,
``.probabilities(batch)`` and ``.classify(images)``; the preprocessing comes from the JSON
written beside the model.

The ONNX path works on NumPy arrays and imports neither torch nor torchvision: the test-time
transform is :func:`standard_transform` (PIL resize, then NumPy), which gives the same
tensor as torchvision's ``Resize, ToTensor, Normalize`` (``tests/test_serve_numpy.py``).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..imagefiles import one_line

Outputs = Dict[str, np.ndarray]  # output name -> array, the logits under "logits"
Runner = Callable[[np.ndarray], Outputs]


def standard_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """PIL image -> RGB, resized to ``size x size`` (bilinear, antialiased), 0..1, normalised
    ``[3, size, size]`` float32 array: torchvision's ``Resize((size, size)), ToTensor(),
    Normalize(mean, std)`` in NumPy."""
    from PIL import Image

    mean32 = np.asarray(mean, np.float32).reshape(3, 1, 1)
    std32 = np.asarray(std, np.float32).reshape(3, 1, 1)

    def transform(img) -> np.ndarray:
        rgb = img.convert("RGB").resize((size, size), Image.BILINEAR)
        x = np.asarray(rgb, np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
        return (x - mean32) / std32
    return transform


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


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
    """An exported model, ready to classify PIL images (NumPy in, NumPy out)."""

    def __init__(self, meta: dict, run: Runner):
        self.meta = meta
        self._run = run
        self.class_names: List[str] = [str(n) for n in meta["class_names"]]
        self.input_size = int(meta["input"]["size"][0])
        self.dynamic_batch = bool(meta.get("dynamic_batch", True))
        # expert level -> output name; exports written before the gates were outputs have none
        self.gate_outputs: Dict[str, str] = dict(meta.get("gate_outputs") or {})
        self.transform = standard_transform(self.input_size, meta["input"]["mean"], meta["input"]["std"])

    def outputs(self, batch) -> Outputs:
        """Every output of the model for ``batch`` ([N, 3, H, W], a NumPy array or a CPU tensor)."""
        x = np.asarray(batch, np.float32)
        parts = [x] if self.dynamic_batch else [x[i:i + 1] for i in range(len(x))]
        runs = [self._run(np.ascontiguousarray(p)) for p in parts]
        return {name: np.concatenate([r[name] for r in runs]) for name in runs[0]}

    def logits(self, batch) -> np.ndarray:
        return self.outputs(batch)["logits"]

    def probabilities(self, batch) -> np.ndarray:
        return softmax(self.logits(batch))

    def classify(self, images: Sequence) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """(``[N, C]`` float64 probabilities, expert level -> ``[N, K]`` gate weights) of PIL images."""
        out = self.outputs(np.stack([self.transform(img) for img in images]))
        gates = {level: out[name].astype(np.float64) for level, name in self.gate_outputs.items() if name in out}
        return softmax(out["logits"]), gates


def onnx_runner(path: str, device: str) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UserError(f"running an ONNX model needs onnxruntime ({exc}); expected it installed (see setup.cfg)")
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    # idle threads sleep instead of spinning, which took the CPU from the face detector and other
    # processes (a 4-face batch: 10.5 ms spinning, 2.2 ms not, once on a busy 2-core machine)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as exc:
        raise UserError(f"onnxruntime cannot load '{path}' ({type(exc).__name__}: {one_line(exc)[:200]}); "
                        f"expected an ONNX file written by semilearn export")
    name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    return lambda x: dict(zip(names, session.run(None, {name: x})))


def torchscript_runner(path: str, device: str, output_names: Sequence[str]) -> Runner:
    import torch

    dev = torch.device("cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
    try:
        module = torch.jit.load(path, map_location=dev).eval()
    except Exception as exc:
        raise UserError(f"cannot load TorchScript '{path}' ({type(exc).__name__}: {one_line(exc)[:200]}); "
                        f"expected a file written by semilearn export --format torchscript")

    @torch.no_grad()
    def run(x: np.ndarray) -> Outputs:
        out = module(torch.from_numpy(x).to(dev))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.float().cpu().numpy() for n, o in zip(output_names, out)}
    return run


def load_exported(path: str, device: str = "auto") -> ExportedPredictor:
    """The predictor of an exported model; its format from the JSON (else the file's extension)."""
    if not os.path.isfile(path):
        raise UserError(f"--model '{path}' does not exist; expected a .onnx or TorchScript file from semilearn export")
    meta = read_metadata(path)
    fmt = meta.get("format") or ("onnx" if path.lower().endswith(".onnx") else "torchscript")
    names = meta.get("output_names") or ["logits"]
    run = onnx_runner(path, device) if fmt == "onnx" else torchscript_runner(path, device, names)
    return ExportedPredictor(meta, run)
