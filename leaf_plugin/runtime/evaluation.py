"""Evaluating a model on a loader: predictions, LEAF gate weights and the metrics
``semilearn train``, ``eval`` and ``report`` all print."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from .device import to_device
from ..flags import EMA_BN_MODES
from .ema_bn import bn_statistics, recompute_bn_statistics


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> Dict[str, float]:
    """semilearn's evaluation metrics (macro averages over the classes present, as semilearn
    computes them) and the confusion matrix over all ``num_classes``, row-normalised, under
    ``"confusion"``."""
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                                 precision_score, recall_score)

    labels = np.arange(num_classes)
    return {
        "top-1-acc": float(accuracy_score(y_true, y_pred)),
        "balanced_acc": float(balanced_accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "F1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels, normalize="true"),
    }


@torch.no_grad()
def predict_loader(model: torch.nn.Module, loader, device: torch.device, out_key: str = "logits") -> dict:
    """Run ``model`` (already in eval mode) over ``loader``: labels, logits, the summed
    cross-entropy and, for LEAF models, each level's gate weights, all on the CPU."""
    y_true, y_logits, gates = [], [], defaultdict(list)
    total_loss = 0.0
    for data in loader:
        x = to_device(data["x_lb"], device)
        y = to_device(data["y_lb"], device)
        out = model(x)
        logits = out[out_key].float()
        total_loss += F.cross_entropy(logits, y, reduction="sum", ignore_index=-1).item()
        y_true.append(y.cpu())
        y_logits.append(logits.cpu())
        for level, g in (out.get("leaf_gates") or {}).items() if isinstance(out, dict) else ():
            if g is not None:
                gates[level].append(g.float().cpu())
    logits = torch.cat(y_logits)
    return {"y_true": torch.cat(y_true).numpy(), "logits": logits.numpy(), "y_pred": logits.argmax(-1).numpy(),
            "loss_sum": total_loss, "gates": {k: torch.cat(v).numpy() for k, v in gates.items()}}


def _set_statistics(algorithm, model, mode: str) -> bool:
    """Give the evaluated ``model`` the BN statistics of ``mode``; False when unavailable."""
    if mode == "recompute":
        recompute_bn_statistics(algorithm, model, algorithm.runtime_opts.ema_bn_batches)
        return True
    source = bn_statistics(algorithm.model) if mode == "live" else \
        getattr(getattr(algorithm, "ema_buffers", None), "shadow", None)
    if source is None:
        return False
    with torch.no_grad():
        for name, buf in bn_statistics(model).items():
            buf.copy_(source[name])
    return True


def compare_bn_modes(algorithm, model, eval_dest: str, out_key: str) -> dict:
    """``eval_bn_MODE/top-1-acc`` and ``/balanced_acc`` of the EMA model under each
    ``--ema_bn`` mode (``--ema_bn_compare``), its own statistics put back afterwards."""
    own = {k: v.clone() for k, v in bn_statistics(model).items()}
    result = {}
    try:
        for mode in EMA_BN_MODES:
            if _set_statistics(algorithm, model, mode):
                model.eval()
                pred = predict_loader(model, algorithm.loader_dict[eval_dest], algorithm.device, out_key)
                metrics = classification_metrics(pred["y_true"], pred["y_pred"], algorithm.num_classes)
                result[f"eval_bn_{mode}/top-1-acc"] = metrics["top-1-acc"]
                result[f"eval_bn_{mode}/balanced_acc"] = metrics["balanced_acc"]
    finally:
        with torch.no_grad():
            for name, buf in bn_statistics(model).items():
                buf.copy_(own[name])
    return result


def evaluate_algorithm(algorithm, eval_dest: str = "eval", out_key: str = "logits",
                       return_logits: bool = False) -> dict:
    """semilearn's metrics on ``eval_dest`` with the EMA model, on any device.

    The EMA model is semilearn's ``ema_model``: the EMA weights with the BN statistics
    ``--ema_bn`` chooses (``recompute``: re-estimated here, first).  Also keeps
    ``algorithm.eval_details[eval_dest]``: labels, predictions, logits, the confusion matrix
    and, for LEAF models, the gate weights."""
    model = algorithm.ema_model
    was_training = model.training
    opts = algorithm.runtime_opts
    extra = {}
    try:
        if algorithm.ema is not None and opts.ema_bn == "recompute":
            recompute_bn_statistics(algorithm, model, opts.ema_bn_batches)
        model.eval()
        pred = predict_loader(model, algorithm.loader_dict[eval_dest], algorithm.device, out_key)
        if algorithm.ema is not None and opts.ema_bn_compare:
            extra = compare_bn_modes(algorithm, model, eval_dest, out_key)
    finally:
        model.train(was_training)
    metrics = classification_metrics(pred["y_true"], pred["y_pred"], algorithm.num_classes)
    algorithm.eval_details = getattr(algorithm, "eval_details", {})
    algorithm.eval_details[eval_dest] = {"y_true": pred["y_true"], "y_pred": pred["y_pred"], "logits": pred["logits"],
                                         "confusion": metrics.pop("confusion"), "gates": pred["gates"]}
    result = {eval_dest + "/loss": pred["loss_sum"] / max(len(pred["y_true"]), 1)}
    result.update({f"{eval_dest}/{k}": v for k, v in metrics.items()})
    result.update(extra)
    if return_logits:
        result[eval_dest + "/logits"] = pred["logits"]
    return result
