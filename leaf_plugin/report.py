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
- ``ambiguity.png``: for a test split with its annotators' votes (FERPlus), the positive sets
  of LEAF's category level against the votes' entropy (:mod:`leaf_plugin.ambiguity`);
- ``report.md``.

The figures are drawn by :mod:`leaf_plugin.plots`.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import UserError
from .history import read_history
from .plots import history_series, plot_confusion, plot_curves, plot_experts
from .runs import RESULTS_FILE, default_checkpoint, evaluate_with_progress, load_algorithm, open_run
from .runtime import classification_metrics

CONFUSION_FILE = "confusion_matrix.png"
CURVES_FILE = "curves.png"
EXPERTS_FILE = "experts.png"
AMBIGUITY_FILE = "ambiguity.png"
PER_CLASS_FILE = "per_class_accuracy.csv"
REPORT_FILE = "report.md"


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
    """The report's headline numbers, computed as training's evaluation computes them."""
    metrics = classification_metrics(y_true, y_pred, num_classes)
    return {"top-1 accuracy": metrics["top-1-acc"], "balanced accuracy": metrics["balanced_acc"],
            "macro F1": metrics["F1"]}


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
    results = _read_json(os.path.join(run_dir, RESULTS_FILE))
    is_leaf = bool(gates) or args.algorithm.startswith("leaf")
    lines = [f"# {args.algorithm} on {args.dataset}", ""]
    lines += ["| | |", "|---|---|",
              f"| run folder | `{os.path.abspath(run_dir)}` |",
              f"| algorithm | {args.algorithm} |",
              f"| dataset | {args.dataset} ({num_classes} classes, {args.num_labels} labels) |",
              f"| net | {args.net} |",
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
    lines += ambiguity_section(algorithm, details, run_dir, notes)
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    path = os.path.join(run_dir, REPORT_FILE)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def ambiguity_section(algorithm, details: dict, run_dir: str, notes: List[str]) -> List[str]:
    """report.md's lines on the EMA model's positive sets against the test faces' votes (FERPlus)."""
    from .ambiguity import MIN_VOTES, ambiguity_rows, markdown_table, plot_ambiguity, size_entropy_correlation
    from .layers import LeafLoss

    votes = getattr(algorithm.dataset_dict["eval"], "votes", None)
    if votes is None or len(votes) != len(details["logits"]):
        return []
    loss = algorithm.leaf_loss if hasattr(algorithm, "leaf_loss") else LeafLoss()  # a host: LEAF's default rule
    logits = details["logits"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    rule = (loss.tau, loss.max_pos, loss.min_pos)
    rows = ambiguity_rows(probs, votes, *rule)
    rho = size_entropy_correlation(probs, votes, *rule)
    drew = _try(notes, "the ambiguity plot", plot_ambiguity, {"EMA model": rows},
                os.path.join(run_dir, AMBIGUITY_FILE), "positive sets against the annotators' votes")
    return ["", "## Ambiguity: positive sets against the annotators' votes", "",
            f"The EMA model's positive set on each test face (LEAF's rule: tau {rule[0]}, at most {rule[1]} classes, "
            f"at least {rule[2]}), by the entropy of the face's votes; *covered*: the set holds every class that "
            f"at least {MIN_VOTES} annotators chose. Spearman correlation of set size with entropy: "
            f"{'not defined (every set the same size)' if rho != rho else f'{rho:+.3f}'}.", "",
            markdown_table(rows, "EMA model"), "",
            *([f"![ambiguity]({AMBIGUITY_FILE})"] if drew else [])]


def write_report_for_run(run_dir: str, load_path: Optional[str] = None, overrides: Sequence[str] = (),
                         progress: bool = True):
    """``semilearn report RUN_DIR``: rebuild the run's algorithm from its checkpoint
    (``latest_model.pth`` unless ``load_path``), evaluate the EMA weights on the test
    split (with a progress bar) and write the report.  Returns (report path, metrics)."""
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder '{run_dir}' does not exist; expected the folder of a semilearn train run")
    load_path = load_path or default_checkpoint(run_dir)
    algorithm = load_algorithm(open_run(load_path, list(overrides), prog="semilearn report"))
    metrics = evaluate_with_progress(algorithm, "eval", progress)
    return write_report(algorithm, run_dir, checkpoint=load_path), metrics
