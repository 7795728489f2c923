"""``semilearn eval``: a checkpoint on its dataset's test split."""
from __future__ import annotations

import argparse
import json
from typing import List

from ..runs import evaluate_with_progress, load_algorithm, open_run


def run(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="semilearn eval",
                                     description="Evaluate a checkpoint written by 'semilearn train' (EMA weights) "
                                                 "on its dataset's test split. Other flags override the run's.")
    parser.add_argument("--load_path", required=True, help="checkpoint (.pth) written by semilearn train")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="the EMA weights (what training reports) or the trained model's own weights")
    known, rest = parser.parse_known_args(argv)
    build = load_algorithm(open_run(known.load_path, rest))
    if known.weights == "model":
        build.ema, build.ema_model = None, build.model
    metrics = evaluate_with_progress(build, "eval")
    shown = {k.split("/")[-1]: float(v) for k, v in metrics.items() if not k.endswith("logits")}
    if known.json:
        print(json.dumps({"load_path": known.load_path, "dataset": build.args.dataset, "weights": known.weights,
                          **shown}))
    else:
        print(f"{known.load_path} ({known.weights} weights) on {build.args.dataset} test split "
              f"({len(build.dataset_dict['eval'])} images):")
        for k, v in shown.items():
            print(f"  {k:<13} {100 * v:6.2f} %" if k != "loss" else f"  {k:<13} {v:.4f}")
    return 0
