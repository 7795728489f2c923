"""Balanced labeled/unlabeled split and the semilearn datasets built from it."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import UserError


def balanced_split(targets: np.ndarray, num_labels: int, num_classes: int, seed: int,
                   class_names: Optional[Sequence[str]] = None,
                   include_lb_to_ulb: bool = True):
    """Indices of ``num_labels // num_classes`` labeled images per class, and the rest
    (``num_labels == -1``: every image labeled, and the unlabeled set is all of them too).

    The choice depends only on ``seed`` (not on numpy's global state), so every
    algorithm run with the same seed sees the same labeled images.
    """
    targets = np.asarray(targets)
    if num_labels == -1:  # every training image labeled (the fully supervised upper bound)
        everything = np.arange(len(targets))
        return everything, everything.copy()
    if num_labels < num_classes:
        raise UserError(f"--num_labels {num_labels} is smaller than the number of classes "
                        f"({num_classes}); expected at least one label per class")
    per_class = num_labels // num_classes
    rng = np.random.RandomState(seed)
    lb_idx, ulb_idx = [], []
    for c in range(num_classes):
        idx = np.flatnonzero(targets == c)
        if len(idx) < per_class:
            name = class_names[c] if class_names is not None else str(c)
            raise UserError(
                f"--num_labels {num_labels} asks for {per_class} labeled images per class, but class "
                f"'{name}' has only {len(idx)} training images; expected --num_labels at most "
                f"{num_classes * int(min(np.bincount(targets, minlength=num_classes)))}")
        idx = idx[rng.permutation(len(idx))]
        lb_idx.append(idx[:per_class])
        ulb_idx.append(idx[per_class:])
    lb_idx = np.concatenate(lb_idx)
    ulb_idx = np.concatenate(ulb_idx)
    if include_lb_to_ulb:
        ulb_idx = np.concatenate([lb_idx, ulb_idx])
    return lb_idx, ulb_idx


def ssl_dataset_dict(args, alg: str, train_data, train_targets, test_data, test_targets,
                     num_classes: int, transforms, dataset_cls, class_names=None) -> dict:
    """semilearn's ``dataset_dict`` from train/test arrays (or path lists).

    ``transforms`` is ``(weak, strong, eval)``; ``dataset_cls`` a ``BasicDataset``
    subclass that knows how to read one item of ``train_data``.
    """
    weak, strong, evaluation = transforms
    test = dataset_cls(alg, test_data, np.asarray(test_targets, dtype=np.int64), num_classes,
                       evaluation, False, None, False)
    if args.eval_only:  # a finished run evaluated: the training images are not split, nor needed
        return {"train_lb": None, "train_ulb": None, "eval": test, "test": None}
    train_targets = np.asarray(train_targets, dtype=np.int64)
    lb_idx, ulb_idx = balanced_split(train_targets, args.num_labels, num_classes, args.seed,
                                     class_names, bool(args.include_lb_to_ulb))
    take = (lambda data, idx: data[idx]) if isinstance(train_data, np.ndarray) else \
        (lambda data, idx: [data[i] for i in idx])
    lb = dataset_cls(alg, take(train_data, lb_idx), train_targets[lb_idx], num_classes, weak,
                     False, None, False)
    ulb = dataset_cls(alg, take(train_data, ulb_idx), train_targets[ulb_idx], num_classes, weak,
                      True, strong, False)
    return {"train_lb": lb, "train_ulb": ulb, "eval": test, "test": None}
