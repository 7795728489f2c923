"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no display needed):
the confusion matrix, the training curves and the experts' gate weights per class."""
from __future__ import annotations

import math
import os
from typing import Dict, List, Sequence

import numpy as np

from .history import MASK_KEYS, POS_KEYS

DPI = 100
ACC_KEYS = ("eval/top-1-acc", "eval/balanced_acc")


def history_series(rows: List[dict]) -> Dict[str, tuple]:
    """``{key: (iterations, values)}``; for an iteration logged twice (a resume) the last row wins."""
    by_it: Dict[int, dict] = {}
    for row in rows:
        if "it" in row:
            by_it.setdefault(int(row["it"]), {}).update(row)
    series: Dict[str, list] = {}
    for it in sorted(by_it):
        for key, value in by_it[it].items():
            if key != "it" and isinstance(value, (int, float)) and math.isfinite(float(value)):
                series.setdefault(key, []).append((it, float(value)))
    return {k: (np.array([p[0] for p in v]), np.array([p[1] for p in v])) for k, v in series.items()}


def loss_keys(series: Dict[str, tuple]) -> List[str]:
    order = ["train/sup_loss", "train/unsup_loss", "train/leaf_amb_loss", "train/leaf_con_loss",
             "train/leaf_balance_loss", "train/total_loss"]
    found = [k for k in series if k.startswith("train/") and k.endswith("_loss")]
    return [k for k in order if k in found] + sorted(k for k in found if k not in order)


# ---- figures ------------------------------------------------------------------------------
def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str) -> None:
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, path)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> bool:
    c = len(class_names)
    side = min(14.0, max(4.5, 0.55 * c + 2.5))
    fig = new_figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(confusion, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(c))
    ax.set_yticks(range(c))
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix (each row normalised by its true class)", fontsize=10)
    if c <= 20:
        for i in range(c):
            for j in range(c):
                v = confusion[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8 if c <= 10 else 6,
                        color="white" if v > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_curves(series: Dict[str, tuple], path: str) -> List[str]:
    """One panel per loss term, then the mask ratio, the positive-set size and the test
    accuracy.  Returns the panel titles drawn (empty: nothing to draw, no file)."""
    panels = [(k.split("/")[-1], [k]) for k in loss_keys(series)]
    mask = [k for k in MASK_KEYS if k in series][:1]
    if mask:
        panels.append(("mask ratio" + (f" ({mask[0].split('/')[-1]})"), mask))
    pos = [k for k in POS_KEYS if k in series]
    if pos:
        panels.append(("mean positive-set size", pos))
    acc = [k for k in ACC_KEYS if k in series]
    if acc:
        panels.append(("test accuracy", acc))
    if not panels:
        return []
    from matplotlib.ticker import MaxNLocator

    cols = min(3, len(panels))
    rows = int(math.ceil(len(panels) / cols))
    fig = new_figure(3.6 * cols, 2.7 * rows)
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key in keys:
            x, y = series[key]
            ax.plot(x, y, marker="o" if len(x) < 15 else None, markersize=3, linewidth=1.2,
                    label=key.split("/")[-1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    return [t for t, _ in panels]


def class_expert_means(gates: np.ndarray, y_true: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, K]``: mean gate weight of each expert over the test images of each true class."""
    out = np.full((num_classes, gates.shape[1]), np.nan)
    for c in range(num_classes):
        sel = y_true == c
        if sel.any():
            out[c] = gates[sel].mean(axis=0)
    return out


def plot_experts(gates: Dict[str, np.ndarray], y_true: np.ndarray, class_names: Sequence[str], path: str) -> List[str]:
    levels = [lv for lv in ("semantic", "instance") if gates.get(lv) is not None and len(gates[lv])]
    levels += [lv for lv in sorted(gates) if lv not in levels and gates[lv] is not None and len(gates[lv])]
    if not levels:
        return []
    c = len(class_names)
    height = min(12.0, max(3.2, 0.4 * c + 1.8))
    k_max = max(gates[lv].shape[1] for lv in levels)
    width = min(8.0, max(4.0, 0.5 * k_max + 2.5))
    fig = new_figure(width * len(levels), height)
    for i, level in enumerate(levels):
        means = class_expert_means(np.asarray(gates[level], dtype=np.float64), y_true, c)
        ax = fig.add_subplot(1, len(levels), i + 1)
        im = ax.imshow(means, cmap="viridis", aspect="auto", vmin=0.0)
        ax.set_xticks(range(means.shape[1]))
        ax.set_yticks(range(c))
        ax.set_yticklabels(class_names, fontsize=8)
        ax.set_xlabel("expert")
        ax.set_ylabel("true class")
        ax.set_title(f"{level} level: mean gate weight", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    save_figure(fig, path)
    return levels
