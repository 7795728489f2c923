"""``metrics.jsonl``: every logged iteration's values, one JSON line each, for curves."""
from __future__ import annotations

import json
import math
import os

from semilearn.core.hooks import Hook

HISTORY_FILE = "metrics.jsonl"
# the host mask's acceptance rate, as each algorithm logs it (LEAF's first: it is the host's mask too)
MASK_KEYS = ("train/leaf_mask_ratio", "train/util_ratio", "train/mask_ratio")
POS_KEYS = ("train/leaf_pos_size",)


TAIL_EVALUATIONS = 5


def is_eval_iteration(algorithm) -> bool:
    """Whether the step just taken (``algorithm.it`` + 1) is evaluated: every ``num_eval_iter``,
    the last, and in the last fifth of training every ``--num_eval_iter_tail`` (when set)."""
    done, total = algorithm.it + 1, algorithm.num_train_iter
    if done % algorithm.num_eval_iter == 0 or done == total:
        return True
    tail = algorithm.args.num_eval_iter_tail
    return tail > 0 and done > total - total // 5 and (total - done) % tail == 0


def tail_scores(rows: list, n: int = TAIL_EVALUATIONS) -> dict:
    """``top1_tail`` and ``balanced_tail``: the mean of the last ``n`` evaluations' top-1 and
    balanced accuracy in history ``rows`` (an iteration logged twice, by a resume, counts once)."""
    by_it = {}
    for row in rows:
        if "it" in row and "eval/top-1-acc" in row:
            by_it[int(row["it"])] = row
    last = [by_it[it] for it in sorted(by_it)][-n:]
    if not last:
        return {}
    return {"top1_tail": sum(r["eval/top-1-acc"] for r in last) / len(last),
            "balanced_tail": sum(r.get("eval/balanced_acc", float("nan")) for r in last) / len(last),
            "tail_evaluations": len(last)}


class HistoryHook(Hook):
    """Appends ``{"it": N, key: value, ...}`` at each log or eval iteration (rank 0)."""

    def after_train_step(self, algorithm):
        if algorithm.distributed and algorithm.rank != 0:
            return
        if not (self.every_n_iters(algorithm, algorithm.num_log_iter) or is_eval_iteration(algorithm)):
            return
        row = {"it": algorithm.it + 1}
        for key, value in algorithm.log_dict.items():
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                row[key] = float(value)
        path = os.path.join(algorithm.save_dir, algorithm.save_name, HISTORY_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_history(run_dir: str) -> list:
    """The rows of a run's ``metrics.jsonl`` (empty when there is none)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        return []
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
    return rows
