"""What a trained run's classifier sees, and how confident it is on faces it was not trained on.

For each run folder (its EMA model, as evaluated) and a set of FER2013 images, prints:

- ``feature norm``: the mean L2 norm of the feature that enters the classifier (``'feat'``;
  for a LEAF network, ``feature_scale`` times the instance level's output),
- ``logit spread``: the mean over images of the largest minus the smallest logit,
- ``confidence``: the mean top softmax probability, ``top-1``: the share predicted right, and
  ``over``: confidence minus top-1 (above 0: over-confident),
- ``>= 0.95``: the share of images whose top probability passes FixMatch's threshold, and how
  often those are right.

On the training split's images (``--split train``) this is what a host's threshold would see when
the run ends; on PublicTest (``--split val``, the default) it is calibration on held-out faces.

    python benchmarks/probes/head_probe.py runs/compare/fer2013_v2_flexmatch_s0_* runs/compare/fer2013_v2_leaf_flexmatch_s0_* --split train
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from leaf_plugin.errors import UserError
from leaf_plugin.runs import default_checkpoint, load_predictor

NPZ = "../shared/data/fer2013/fer2013_dev.npz"


def head_stats(feat: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, threshold: float = 0.95) -> Dict[str, float]:
    """The probe's numbers for one run, from its features ``[N,d]``, logits ``[N,C]`` and labels ``[N]``."""
    probs = logits.double().softmax(dim=1)
    conf, pred = probs.max(dim=1)
    right = (pred == labels).double()
    passed = conf >= threshold
    return {
        "feature norm": feat.double().norm(dim=1).mean().item(),
        "logit spread": (logits.max(dim=1).values - logits.min(dim=1).values).double().mean().item(),
        "confidence": conf.mean().item(),
        "top-1": right.mean().item(),
        "over": (conf - right).mean().item(),
        f">= {threshold:g}": passed.double().mean().item(),
        "right of those": right[passed].mean().item() if passed.any() else float("nan"),
    }


@torch.no_grad()
def probe_run(run_dir: str, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> Dict[str, float]:
    """Load ``run_dir``'s EMA model and compute :func:`head_stats` on ``images`` (uint8, N x H x W)."""
    predictor = load_predictor(default_checkpoint(run_dir), device="cpu")
    feats, logits = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([predictor.transform(Image.fromarray(a)) for a in images[start:start + batch_size]])
        out = predictor.model(batch)
        feats.append(out["feat"])
        logits.append(out["logits"])
    return head_stats(torch.cat(feats), torch.cat(logits), torch.as_tensor(labels))


def table(rows: List[tuple]) -> str:
    keys = list(rows[0][1])
    lines = ["| run | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(f"{stats[k]:.3f}" for k in keys) + " |" for name, stats in rows]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (each with latest_model.pth or model_best.pth)")
    p.add_argument("--split", choices=["val", "train"], default="val",
                   help="FER2013 PublicTest (val) or the training split's images (train)")
    p.add_argument("--num", type=int, default=2000, help="images, drawn with --seed from the split (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--npz", default=NPZ, help=f"the FER2013 arrays (default {NPZ})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: beside running cells)")
    opts = p.parse_args(argv)
    try:
        for run in opts.runs:  # every folder is checked before the first model is loaded
            default_checkpoint(run)
    except UserError as exc:
        print(f"head_probe.py: {exc}", file=sys.stderr)
        return 2
    if not Path(opts.npz).is_file():
        print(f"head_probe.py: {opts.npz} does not exist; expected the FER2013 .npz (x_val, y_val, ...)", file=sys.stderr)
        return 2
    with np.load(opts.npz) as data:
        x, y = data[f"x_{opts.split}"], data[f"y_{opts.split}"]
    pick = np.random.default_rng(opts.seed).permutation(len(x))[: opts.num]
    torch.set_num_threads(opts.threads)
    rows = []
    for run in opts.runs:
        rows.append((run.rstrip("/").split("/")[-1], probe_run(run, x[pick], y[pick])))
        print(f"[done] {rows[-1][0]}", file=sys.stderr)
    print(f"{len(pick)} FER2013 {opts.split} images, seed {opts.seed}; EMA models as evaluated\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
