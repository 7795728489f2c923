"""What LEAF's category level would teach, read off a trained run, for several positive-set rules.

The category level trains the strong view of each sample the host rejects towards its
*positive set*: the top ``n`` classes of ``q``, the mean of the two weak views'
probabilities, with ``n`` from ``--leaf_tau`` / ``--leaf_max_pos`` (and ``--leaf_min_pos``).
A set that misses the true class teaches a wrong class.  This script loads a run's
checkpoint, passes the unlabeled training set through the live model as training does (two
weak views per image, train mode, no gradient), and prints, for the host's threshold and each
rule: how many samples are rejected, their positive sets' mean size, how often the set holds
the true class (``hit``), how often the arg-max alone does, and the mean concave weight.

    python benchmarks/probes/positive_sets.py runs/compare/fer2013_v2_leaf_fixmatch_s0_*/latest_model.pth \\
        --rules 0.9,1 0.9,2 0.95,1 0.99,1 --max_batches 100
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Sequence, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from leaf_plugin.losses import ambiguous_weight, positive_mask, positive_set_size  # noqa: E402

Rule = Tuple[float, int]


def parse_rule(text: str) -> Rule:
    """``"0.9,2"`` -> ``(0.9, 2)``: tau and the smallest set size."""
    try:
        tau, min_pos = text.split(",")
        return float(tau), int(min_pos)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rule '{text}' is not TAU,MIN_POS (e.g. 0.9,2)") from None


def rule_stats(q: torch.Tensor, y: torch.Tensor, rejected: torch.Tensor, tau: float, max_pos: int,
               min_pos: int, lam: float) -> Dict[str, float]:
    """Sums over the rejected rows of ``q`` (``[B, C]``) with true labels ``y``: count, set size,
    hits of the set, hits of the arg-max, concave weight."""
    q, y = q[rejected], y[rejected]
    if q.shape[0] == 0:
        return {"rejected": 0.0, "size": 0.0, "hit": 0.0, "argmax_hit": 0.0, "weight": 0.0}
    n = positive_set_size(q, tau, max_pos, min_pos)
    hit = positive_mask(q, n).gather(1, y.unsqueeze(1)).squeeze(1)
    return {"rejected": float(q.shape[0]), "size": float(n.sum()), "hit": float(hit.sum()),
            "argmax_hit": float((q.argmax(1) == y).sum()), "weight": float(ambiguous_weight(q, n, lam).sum())}


def table(totals: Dict[Rule, Dict[str, float]], seen: float, accepted_right: float, accepted: float,
          max_pos: int) -> List[str]:
    lines = [f"unlabeled samples seen: {int(seen)}; accepted by the host: {accepted / seen:.3f} "
             f"(their pseudo-labels right: {accepted_right / max(accepted, 1):.3f})", "",
             "| tau | min set | max set | rejected | mean set size | set holds the true class | arg-max right "
             "| mean weight |", "|---|---|---|---|---|---|---|---|"]
    for (tau, min_pos), t in totals.items():
        r = max(t["rejected"], 1.0)
        lines.append(f"| {tau:g} | {min_pos} | {max_pos} | {t['rejected'] / seen:.3f} | {t['size'] / r:.2f} "
                     f"| {t['hit'] / r:.3f} | {t['argmax_hit'] / r:.3f} | {t['weight'] / r:.3f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a run's latest_model.pth or model_best.pth")
    p.add_argument("--rules", nargs="+", type=parse_rule, default=[(0.9, 1), (0.9, 2), (0.95, 1), (0.99, 1)],
                   help="TAU,MIN_POS pairs (default: 0.9,1 0.9,2 0.95,1 0.99,1)")
    p.add_argument("--max_pos", type=int, default=3)
    p.add_argument("--p_cutoff", type=float, default=None, help="the host's threshold (default: the run's)")
    p.add_argument("--max_batches", type=int, default=100, help="unlabeled batches to read (0: all)")
    p.add_argument("--threads", type=int, default=0)
    opts = p.parse_args(argv)
    too_large = [m for _, m in opts.rules if not 1 <= m <= opts.max_pos]
    if too_large:
        p.error(f"a rule's smallest set {too_large[0]} is not in 1..--max_pos ({opts.max_pos})")
    if opts.threads:
        torch.set_num_threads(opts.threads)

    from leaf_plugin.algorithms.views import mean_probs
    from leaf_plugin.errors import UserError
    from leaf_plugin.runs import load_algorithm, open_run

    try:
        algorithm = load_algorithm(open_run(opts.checkpoint, ["--num_workers", "0"]), training_data=True)
    except UserError as exc:
        print(f"positive_sets.py: {exc}", file=sys.stderr)
        return 2
    if "x_ulb_w_2" not in algorithm.dataset_dict["train_ulb"][0]:
        print(f"positive_sets.py: {opts.checkpoint} is not a LEAF run (its unlabeled set has one weak view); "
              f"expected a leaf_ algorithm's checkpoint", file=sys.stderr)
        return 2
    targets = torch.as_tensor(algorithm.dataset_dict["train_ulb"].targets).long()
    p_cutoff = opts.p_cutoff if opts.p_cutoff is not None else float(getattr(algorithm.args, "p_cutoff", 0.95))
    lam = float(algorithm.args.leaf_weight_lambda)
    model = algorithm.model.train()
    totals = {rule: dict.fromkeys(("rejected", "size", "hit", "argmax_hit", "weight"), 0.0) for rule in opts.rules}
    seen = accepted = accepted_right = 0.0
    torch.manual_seed(0)
    with torch.no_grad():
        for i, batch in enumerate(algorithm.loader_dict["train_ulb"]):
            if opts.max_batches and i >= opts.max_batches:
                break
            w1, w2 = batch["x_ulb_w"], batch["x_ulb_w_2"]
            logits = model(torch.cat([w1, w2]))["logits"]
            q = mean_probs(logits[: len(w1)], logits[len(w1):])
            y = targets[batch["idx_ulb"].long()]
            keep = q.max(1).values >= p_cutoff
            seen += len(y)
            accepted += float(keep.sum())
            accepted_right += float((q.argmax(1)[keep] == y[keep]).sum())
            for (tau, min_pos), t in totals.items():
                for k, v in rule_stats(q, y, ~keep, tau, opts.max_pos, min_pos, lam).items():
                    t[k] += v
    print(f"{opts.checkpoint}: live model, train mode, host threshold {p_cutoff:g}, max set {opts.max_pos}")
    print("\n".join(table(totals, seen, accepted_right, accepted, opts.max_pos)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
