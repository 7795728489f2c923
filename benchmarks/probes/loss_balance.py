"""How large each term of the training loss is, per run and per part of training.

Reads the ``metrics.jsonl`` of finished (or running) run folders and prints, for each, the mean
over log windows of the supervised loss, the host's unlabeled loss (``train/unsup_loss``) and
LEAF's terms (``train/leaf_amb_loss``, ``train/leaf_con_loss``), over the first and the second
half of the iterations (``--parts`` for more). The terms are unweighted, as logged: they enter
the loss times the host's ``lambda_u``, ``--leaf_lambda_amb`` and ``--leaf_lambda_c`` (1, 1 and
0.1 by default).

    python benchmarks/probes/loss_balance.py runs/compare/fer2013_v2_leaf_fixmatch_s0_* runs/compare/fer2013_v2_fixmatch_s0_*
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from leaf_plugin.history import HISTORY_FILE, read_history

TERMS = {"sup": "train/sup_loss", "host unlabeled": "train/unsup_loss", "ambiguous": "train/leaf_amb_loss",
         "two-view": "train/leaf_con_loss"}


def part_means(rows: List[dict], parts: int) -> List[Tuple[str, Dict[str, float]]]:
    """``("lo-hi", means)`` for each of ``parts`` equal spans of the iterations: the mean of each
    term over the span's log windows (NaN where the span has no value of the term)."""
    last = max((r["it"] for r in rows), default=0)
    out = []
    for k in range(parts):
        lo, hi = last * k / parts, last * (k + 1) / parts
        span = [r for r in rows if lo < r["it"] <= hi or (k == 0 and r["it"] == 0)]
        means = {}
        for name, key in TERMS.items():
            values = [float(r[key]) for r in span if r.get(key) is not None and math.isfinite(float(r[key]))]
            means[name] = sum(values) / len(values) if values else float("nan")
        out.append((f"{round(lo)}-{round(hi)}", means))
    return out


def table(runs: List[Path], parts: int = 2) -> str:
    lines = ["| run | iterations | " + " | ".join(TERMS) + " |", "|---|---|" + "---|" * len(TERMS)]
    for run in runs:
        for span, means in part_means(read_history(str(run)), parts):
            cells = ["-" if math.isnan(v) else f"{v:.3f}" for v in means.values()]
            lines.append(f"| {run.name} | {span} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders holding metrics.jsonl")
    p.add_argument("--parts", type=int, default=2, help="equal spans of the iterations (default 2: the halves)")
    opts = p.parse_args(argv)
    missing = [str(r) for r in opts.runs if not (r / HISTORY_FILE).is_file()]
    if missing:
        print(f"loss_balance: no metrics.jsonl in {missing[0]}; expected a run folder of semilearn train",
              file=sys.stderr)
        return 2
    if opts.parts < 1:
        print(f"loss_balance: --parts {opts.parts} is not valid; expected 1 or more", file=sys.stderr)
        return 2
    print(table(opts.runs, opts.parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
