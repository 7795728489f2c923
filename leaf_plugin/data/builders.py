"""What the facial-expression datasets share once their files are read.

Each builder reads the labels (and FER2013's pixels) at build time and checks
every listed image cheaply (exists, PIL recognises its header; see
:mod:`.images`); RAF-DB, AffectNet and image folders are decoded lazily, one
image per ``__sample__``.  The labeled subset is ``--num_labels // C`` images
per class chosen with ``--seed`` (:func:`.splits.balanced_split`), the rest
unlabeled.  Bad input is a ``UserError`` naming the path (and line) and what
was expected.

Default augmentation: ``small`` at 48 px for ``fer2013`` and ``ferplus``,
``released`` at 224 px for the others (``--aug_recipe`` / ``--img_size`` override).
The number of classes is always ``len(class_names)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import UserError
from .images import ArrayDataset, check_images, file_dataset_class, log_info
from .splits import ssl_dataset_dict
from .transforms import recipe_transforms


def default_transforms(args, recipe: str, size: int):
    """(weak, strong, eval) of the dataset's default ``recipe`` at ``size``, unless the flags say otherwise."""
    return recipe_transforms(args, recipe, size)


def small_eval_transform(args):
    """Test-time transform of the 48 px datasets (``--aug_recipe`` / ``--img_size`` honoured)."""
    return recipe_transforms(args, "small", 48)[2]


def released_eval_transform(args):
    """Test-time transform of the 224 px datasets (``--aug_recipe`` / ``--img_size`` honoured)."""
    return recipe_transforms(args, "released", 224)[2]


def build_from_files(args, alg, dataset: str, train, test, class_names: Sequence[str], recipe: str, size: int,
                     layout: str) -> dict:
    """dataset_dict from ``(paths, targets, sources)`` for train and test, after the image checks."""
    num_classes = len(class_names)
    skip = bool(args.skip_bad_images)
    kept = []
    for (paths, targets, sources), part in ((train, "training"), (test, "test")):
        if part == "training" and args.eval_only:  # not read: ssl_dataset_dict leaves them out
            kept.append(([], np.zeros(0, dtype=np.int64)))
            continue
        keep = check_images(paths, sources, skip, layout, args, what=f"{dataset} {part} images")
        kept.append(([paths[i] for i in keep], np.asarray(targets, dtype=np.int64)[keep]))
    (tr_x, tr_y), (te_x, te_y) = kept
    if len(te_x) == 0:
        raise UserError(f"dataset '{dataset}' in '{args.data_dir}' has no test images; expected {layout}")
    per_class = ", ".join(f"{n} {c}" for n, c in zip(np.bincount(tr_y, minlength=num_classes), class_names))
    log_info(args, f"{dataset}: {len(tr_x)} training and {len(te_x)} test images in {num_classes} classes "
                   f"(training per class: {per_class})")
    return ssl_dataset_dict(args, alg, tr_x, tr_y, te_x, te_y, num_classes,
                            default_transforms(args, recipe, size), file_dataset_class(args), class_names)


def build_from_arrays(args, alg, dataset: str, tr_x, tr_y, te_x, te_y, class_names: Sequence[str], recipe: str,
                      size: int) -> dict:
    """dataset_dict from in-memory uint8 images and their labels."""
    num_classes = len(class_names)
    log_info(args, f"{dataset}: {len(tr_x)} training and {len(te_x)} test images in {num_classes} classes")
    return ssl_dataset_dict(args, alg, tr_x, tr_y, te_x, te_y, num_classes,
                            default_transforms(args, recipe, size), ArrayDataset, class_names)
