"""``metrics.jsonl``: every logged iteration's values, one JSON line each, for curves."""
from __future__ import annotations

import json
import math
import os

from semilearn.core.hooks import Hook

HISTORY_FILE = "metrics.jsonl"


class HistoryHook(Hook):
    """Appends ``{"it": N, key: value, ...}`` at each log or eval iteration (rank 0)."""

    def after_train_step(self, algorithm):
        if algorithm.distributed and algorithm.rank != 0:
            return
        if not (self.every_n_iters(algorithm, algorithm.num_log_iter)
                or self.every_n_iters(algorithm, algorithm.num_eval_iter) or self.is_last_iter(algorithm)):
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
