"""What chose the FER2013 protocol, from runs trained with ``--ema_bn_compare true``:

1. ``--ema_bn``: per run, the EMA model's tail score (mean of the last 5 evaluations) under each
   BN-statistics mode and its dips (a fall of over 3 points from one evaluation to the next),
   then the mean per algorithm;
2. the length: the tail score three quarters of the way through training against at its end;
3. the pseudo-label diagnostics over the last quarter (quantity, quality, LEAF's positive sets).

    python benchmarks/probes/protocol_study.py --curves benchmarks/results/protocol_study_curves.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

MODES = ("live", "ema", "recompute")
DIP = 0.03


def dips(points) -> int:
    return sum(1 for (_, a), (_, b) in zip(points, points[1:]) if a - b > DIP)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--curves", type=Path, required=True, help="a compare.py <name>_curves.jsonl")
    p.add_argument("--tail", type=int, default=5)
    p.add_argument("--mode", choices=MODES, default="ema", help="the mode of the convergence table")
    opts = p.parse_args(argv)
    entries = [json.loads(line) for line in opts.curves.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if "eval_bn" in e]
    print("| algorithm | seed | " + " | ".join(f"{m}: tail top-1 (%), dips" for m in MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    by_alg = {}
    for e in sorted(entries, key=lambda e: (e["algorithm"], e["seed"])):
        cells = []
        for mode in MODES:
            points = e["eval_bn"].get(mode, [])
            tail = statistics.mean(a for _, a in points[-opts.tail:]) if points else float("nan")
            by_alg.setdefault(e["algorithm"], {}).setdefault(mode, []).append((tail, dips(points)))
            cells.append(f"{100 * tail:.2f}, {dips(points)}")
        print(f"| {e['algorithm']} | {e['seed']} | " + " | ".join(cells) + " |")
    print()
    print("| algorithm | runs | " + " | ".join(f"{m}: mean tail (%), dips per run" for m in MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for alg, modes in by_alg.items():
        cells = [f"{100 * statistics.mean(t for t, _ in v):.2f}, {statistics.mean(d for _, d in v):.1f}"
                 for v in (modes[m] for m in MODES)]
        print(f"| {alg} | {len(modes[MODES[0]])} | " + " | ".join(cells) + " |")
    print()
    print(f"Convergence under --ema_bn {opts.mode}: the tail score (mean of {opts.tail} evaluations) three quarters "
          f"of the way through training and at its end")
    print()
    print("| algorithm | seed | tail at 3/4 (%) | tail at end (%) | change (points) |")
    print("|---|---|---|---|---|")
    changes = {}
    for e in sorted(entries, key=lambda e: (e["algorithm"], e["seed"])):
        points = e["eval_bn"].get(opts.mode, [])
        end = points[-1][0]
        quarter = [(it, a) for it, a in points if it <= 0.75 * end]
        if len(quarter) < opts.tail:
            continue
        at_q = statistics.mean(a for _, a in quarter[-opts.tail:])
        at_end = statistics.mean(a for _, a in points[-opts.tail:])
        changes.setdefault(e["algorithm"], []).append(100 * (at_end - at_q))
        print(f"| {e['algorithm']} | {e['seed']} | {100 * at_q:.2f} | {100 * at_end:.2f} | "
              f"{100 * (at_end - at_q):+.2f} |")
    for alg, c in changes.items():
        print(f"| {alg} | mean | | | {statistics.mean(c):+.2f} |")
    print()
    keys = ("pl_mask_ratio", "pl_accuracy", "pl_all_accuracy", "leaf_pos_hit", "leaf_pos_size_rejected")
    print("| algorithm | seed | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for e in sorted(entries, key=lambda e: (e["algorithm"], e["seed"])):
        diag = e.get("diagnostics", {})
        if not diag:
            continue
        end = max(it for it, _ in e["eval"])
        cells = []
        for key in keys:
            late = [v for it, v in diag.get(key, []) if it > 0.75 * end]
            cells.append(f"{statistics.mean(late):.3f}" if late else "-")
        print(f"| {e['algorithm']} | {e['seed']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
