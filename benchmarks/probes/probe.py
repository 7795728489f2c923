"""Linear probe of a backbone checkpoint on FER2013: how much does a (self-supervised) start know?

Features of the frozen backbone (pooled, before the classifier) for ``--num_labels`` labeled
training faces (the same balanced, seeded split ``semilearn train`` uses) and for the
PublicTest faces; a logistic regression on the labeled features; top-1 and balanced accuracy on
PublicTest, for the checkpoint and for a randomly initialised backbone of the same net.

    python benchmarks/probes/probe.py --pretrain_path benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
NPZ = (REPO / ".." / "shared" / "data" / "fer2013" / "fer2013_dev.npz").resolve()


@torch.no_grad()
def features(backbone, images: np.ndarray, transform, batch: int = 512) -> np.ndarray:
    from PIL import Image

    backbone.eval()
    out = []
    for start in range(0, len(images), batch):
        x = torch.stack([transform(Image.fromarray(im).convert("RGB")) for im in images[start:start + batch]])
        out.append(backbone(x, only_feat=True).numpy())
    return np.concatenate(out)


def probe(backbone, data, lb_idx, transform) -> tuple:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    train = features(backbone, data["x_train"][lb_idx], transform)
    test = features(backbone, data["x_val"], transform)
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(max_iter=5000, C=0.1).fit(scaler.transform(train), data["y_train"][lb_idx])
    pred = clf.predict(scaler.transform(test))
    return accuracy_score(data["y_val"], pred), balanced_accuracy_score(data["y_val"], pred)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain_path", required=True)
    p.add_argument("--net", default="leaf_cnn4")
    p.add_argument("--num_labels", type=int, default=175)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data", default=str(NPZ))
    opts = p.parse_args(argv)

    import leaf_plugin  # noqa: F401  (registers the nets once semilearn is imported)
    from leaf_plugin.data.builders import small_eval_transform
    from leaf_plugin.data.splits import balanced_split
    from leaf_plugin.nets.pretrained import load_pretrained_backbone
    import semilearn.nets as nets

    data = dict(np.load(opts.data))
    transform = small_eval_transform(argparse.Namespace(img_size=48, aug_recipe=None))
    print("| start | seed | top-1 (%) | balanced (%) |\n|---|---|---|---|")
    for seed in opts.seeds:
        lb_idx, _ = balanced_split(data["y_train"], opts.num_labels, 7, seed)
        for name in ("random", "checkpoint"):
            torch.manual_seed(seed)
            backbone = getattr(nets, opts.net)(num_classes=7)
            if name == "checkpoint":
                load_pretrained_backbone(backbone, opts.pretrain_path)
            top1, bal = probe(backbone, data, lb_idx, transform)
            print(f"| {name} | {seed} | {100 * top1:.1f} | {100 * bal:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
