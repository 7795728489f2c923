"""A run's report: confusion matrix, per-class accuracy, training curves and the
experts' gates, linked from ``report.md`` in the run folder.

:func:`write_report` is called by ``semilearn train`` at the end of a run with
the live algorithm (its last evaluation is reused); :func:`write_report_for_run`
(``semilearn report RUN_DIR``) rebuilds the algorithm from the run's checkpoint
and evaluates the EMA weights on the test split first.

Files written into the run folder:

- ``confusion_matrix.png``: the confusion matrix normalised by true class, class names on both axes;
- ``per_class_accuracy.csv``: class, images, correct, accuracy (also a table in report.md);
- ``curves.png``: each loss term, the mask ratio, the mean positive-set size and the
  test accuracy over iterations (from ``metrics.jsonl``);
- ``experts.png``: for the semantic and instance levels, the mean gate weight of each
  expert for each true class of the test set (omitted, with a note, for non-LEAF runs);
- ``report.md``.

Figures are drawn with matplotlib's Agg canvas (no pyplot, no display needed).
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from .history import read_history

DPI = 100
CONFUSION_FILE = "confusion_matrix.png"
CURVES_FILE = "curves.png"
EXPERTS_FILE = "experts.png"
PER_CLASS_FILE = "per_class_accuracy.csv"
REPORT_FILE = "report.md"

# curves.png: (title, keys plotted together); loss terms are found in the history
MASK_KEYS = ("train/leaf_mask_ratio", "train/util_ratio", "train/mask_ratio")
POS_KEYS = ("train/leaf_pos_size",)
ACC_KEYS = ("eval/top-1-acc", "eval/balanced_acc")


# ---- evaluation -------------------------------------------------------------------------
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


# ---- numbers ------------------------------------------------------------------------------
def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> List[dict]:
    rows = []
    for c, name in enumerate(class_names):
        sel = y_true == c
        support = int(sel.sum())
        correct = int((y_pred[sel] == c).sum())
        rows.append({"index": c, "class": name, "images": support, "correct": correct,
                     "accuracy": correct / support if support else float("nan")})
    return rows


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> Dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    labels = np.arange(num_classes)
    return {"top-1 accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro F1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))}


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
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> None:
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=DPI)
    os.replace(tmp, path)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> bool:
    c = len(class_names)
    side = min(14.0, max(4.5, 0.55 * c + 2.5))
    fig = _figure(side + 1.0, side)
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
    _save(fig, path)
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
    fig = _figure(3.6 * cols, 2.7 * rows)
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
    _save(fig, path)
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
    fig = _figure(width * len(levels), height)
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
    _save(fig, path)
    return levels


# ---- the report -----------------------------------------------------------------------------
def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f} %"


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _try(notes: List[str], what: str, fn, *args):
    """Draw one figure; a failure becomes a note in report.md, never a failed run."""
    try:
        return fn(*args)
    except Exception as exc:  # pragma: no cover - matplotlib trouble must not lose a finished run
        notes.append(f"{what} could not be drawn ({type(exc).__name__}: {exc}).")
        print(f"report: {what} could not be drawn ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def write_report(algorithm, run_dir: str, progress: bool = False, checkpoint: Optional[str] = None) -> str:
    """Write the report of ``algorithm`` (a live semilearn algorithm) into ``run_dir``;
    returns the path of report.md.  Uses ``algorithm.eval_details['eval']`` from its last
    evaluation, or evaluates (EMA weights, test split) when there is none."""
    from .data.access import class_names_for

    os.makedirs(run_dir, exist_ok=True)
    details = (getattr(algorithm, "eval_details", None) or {}).get("eval")
    if details is None:
        evaluate_with_progress(algorithm, "eval", progress)
        details = algorithm.eval_details["eval"]
    args = algorithm.args
    num_classes = int(algorithm.num_classes)
    names = class_names_for(args, num_classes)
    y_true = np.asarray(details["y_true"])
    y_pred = np.asarray(details["y_pred"])
    confusion = np.asarray(details["confusion"], dtype=np.float64)
    gates = {k: np.asarray(v) for k, v in (details.get("gates") or {}).items() if v is not None and len(v)}
    notes: List[str] = []

    # per-class accuracy
    table = per_class_table(y_true, y_pred, names)
    with open(os.path.join(run_dir, PER_CLASS_FILE), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["index", "class", "images", "correct", "accuracy"])
        writer.writeheader()
        for row in table:
            writer.writerow({**row, "accuracy": f"{row['accuracy']:.6f}"})

    drew_cm = bool(_try(notes, "the confusion matrix", plot_confusion, confusion, names,
                        os.path.join(run_dir, CONFUSION_FILE)))
    series = history_series(read_history(run_dir))
    curves = _try(notes, "the training curves", plot_curves, series, os.path.join(run_dir, CURVES_FILE)) or []
    levels = _try(notes, "the experts' gates", plot_experts, gates, y_true, names,
                  os.path.join(run_dir, EXPERTS_FILE)) or []
    for stale, keep in ((CURVES_FILE, curves), (EXPERTS_FILE, levels)):
        if not keep and os.path.isfile(os.path.join(run_dir, stale)):
            os.remove(os.path.join(run_dir, stale))  # from an earlier report of another run

    metrics = summary_metrics(y_true, y_pred, num_classes)
    results = _read_json(os.path.join(run_dir, "results.json"))
    is_leaf = bool(gates) or str(getattr(args, "algorithm", "")).startswith("leaf")
    lines = [f"# {getattr(args, 'algorithm', '?')} on {getattr(args, 'dataset', '?')}", ""]
    lines += ["| | |", "|---|---|",
              f"| run folder | `{os.path.abspath(run_dir)}` |",
              f"| algorithm | {getattr(args, 'algorithm', '?')} |",
              f"| dataset | {getattr(args, 'dataset', '?')} ({num_classes} classes, "
              f"{getattr(args, 'num_labels', '?')} labels) |",
              f"| net | {getattr(args, 'net', '?')} |",
              f"| iterations | {getattr(algorithm, 'it', results.get('iterations', '?'))} |"]
    if checkpoint:
        lines.append(f"| checkpoint | `{checkpoint}` |")
    lines += ["", f"## Final metrics (EMA model, test split, {len(y_true)} images)", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_pct(v)} |" for k, v in metrics.items()]
    if "best_top1" in results:
        lines.append(f"| best top-1 during training | {_pct(results['best_top1'])} (iteration {int(results['best_it']) + 1 if isinstance(results.get('best_it'), int) else '?'}) |")
    if "wall_time_s" in results:
        lines.append(f"| training time | {results['wall_time_s']:.0f} s |")
    lines += ["", "## Confusion matrix", ""]
    lines += [f"![confusion matrix]({CONFUSION_FILE})" if drew_cm else "_not drawn (see notes)_", ""]
    lines += ["## Per-class accuracy", "", f"Also in [{PER_CLASS_FILE}]({PER_CLASS_FILE}).", "",
              "| class | images | correct | accuracy |", "|---|---:|---:|---:|"]
    lines += [f"| {r['class']} | {r['images']} | {r['correct']} | {_pct(r['accuracy'])} |" for r in table]
    lines += ["", "## Training curves", ""]
    if curves:
        lines += [f"![training curves]({CURVES_FILE})", "", "Panels: " + ", ".join(curves) + "."]
    else:
        lines.append("_No training history (metrics.jsonl) in the run folder: no curves._")
    lines += ["", "## Experts", ""]
    if levels:
        lines += [f"![experts]({EXPERTS_FILE})", "",
                  "Mean gate weight of each expert over the test images of each true class, for the "
                  + " and ".join(levels) + " level" + ("s" if len(levels) > 1 else "") + "."]
    elif is_leaf:
        lines.append("_This LEAF run records no gate weights (its expert levels are switched off)._")
    else:
        lines.append("_Not a LEAF run: there are no experts to show._")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path = os.path.join(run_dir, REPORT_FILE)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def default_checkpoint(run_dir: str) -> str:
    for name in ("latest_model.pth", "model_best.pth"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            return path
    from .errors import UserError
    raise UserError(f"run folder '{run_dir}' has no latest_model.pth or model_best.pth; expected the folder of a "
                    f"semilearn train run (or pass --load_path)")


def write_report_for_run(run_dir: str, load_path: Optional[str] = None, overrides: Sequence[str] = (),
                         progress: bool = True):
    """``semilearn report RUN_DIR``: rebuild the run's algorithm from its checkpoint
    (``latest_model.pth`` unless ``load_path``), evaluate the EMA weights on the test
    split (with a progress bar) and write the report.  Returns (report path, metrics)."""
    from .cli.evaluate import load_algorithm
    from .errors import UserError

    if not os.path.isdir(run_dir):
        raise UserError(f"run folder '{run_dir}' does not exist; expected the folder of a semilearn train run")
    load_path = load_path or default_checkpoint(run_dir)
    algorithm = load_algorithm(load_path, list(overrides))
    metrics = evaluate_with_progress(algorithm, "eval", progress)
    return write_report(algorithm, run_dir, checkpoint=load_path), metrics
