"""``semilearn report RUN_DIR``: confusion matrix, per-class accuracy, curves, expert plots
and report.md for the folder of a ``semilearn train`` run.

The run's algorithm is rebuilt from its checkpoint (``latest_model.pth``, or
``--load_path``) and its EMA weights are evaluated on the test split; other
flags (``--device``, ``--data_dir``, ``--eval_batch_size``, ...) override the run's.
"""
from __future__ import annotations

from typing import List

from ..flags import optional_bool


def run(argv: List[str]) -> int:
    from ..report import write_report_for_run
    from ..flags import OneLineParser

    p = OneLineParser(prog="semilearn report",
                      description="Write confusion_matrix.png, per_class_accuracy.csv, curves.png, experts.png and "
                                  "report.md into a run folder of semilearn train (EMA weights, test split). Other "
                                  "flags of semilearn train (--device, --data_dir, --eval_batch_size) override "
                                  "the run's.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (SAVE_DIR/SAVE_NAME)")
    p.add_argument("--load_path", default=None, help="checkpoint to evaluate (default: RUN_DIR/latest_model.pth)")
    optional_bool(p, "--progress", True, "show a progress bar over the evaluation")
    known, rest = p.parse_known_args(argv)
    path, metrics = write_report_for_run(known.run_dir, known.load_path, rest, known.progress)
    top1 = metrics.get("eval/top-1-acc")
    bal = metrics.get("eval/balanced_acc")
    print(f"report: {path}  (top-1 {100 * top1:.2f} %, balanced accuracy {100 * bal:.2f} %)")
    return 0
