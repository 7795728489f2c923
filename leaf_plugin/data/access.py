"""What the command line needs of a dataset beyond the registry's builders.

:func:`data_args` (a namespace a dataset builder accepts), :func:`training_images`
(the training images as a torch Dataset of PIL images, labels unused: what
``semilearn pretrain`` learns from), :func:`eval_transform_for` (a run's test-time
transform, for ``semilearn predict``) and :func:`class_names_for`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from argparse import Namespace
from typing import Callable, Optional

import numpy as np
from torch.utils.data import Dataset

from ..errors import UserError

def data_args(dataset: str, data_dir: str = "./data", img_size: Optional[int] = None, seed: int = 0,
              **extra) -> Namespace:
    """A ``semilearn train``-style Namespace (every flag at its default) for building
    ``dataset``'s splits: the number of classes filled in and one label per class
    asked for (the builders need a labeled split; nothing here uses it)."""
    from ..flags import base_parser
    from . import get_dataset_spec

    spec = get_dataset_spec(dataset)
    args = base_parser().parse_args([])
    args.dataset, args.data_dir, args.seed = dataset, data_dir, seed
    args.algorithm = "fixmatch"
    args.img_size = img_size or (spec.img_size if spec is not None else 32)
    args.include_lb_to_ulb = True
    for key, value in extra.items():
        setattr(args, key, value)
    if spec is not None:
        args.num_classes = spec.classes_for(args)
        args.num_labels = args.num_classes
    return args


def build_splits(args, alg: str = "fixmatch", quiet: bool = True) -> dict:
    """The registry builder's ``dataset_dict`` for ``args.dataset`` (the plug-in's datasets only)."""
    from . import get_dataset_spec

    spec = get_dataset_spec(args.dataset)
    if spec is None:
        raise UserError(f"dataset '{args.dataset}' is one of semilearn's own; expected one of the plug-in's "
                        f"datasets (semilearn list datasets)")
    args = copy.copy(args)
    args.include_lb_to_ulb = True  # then the unlabeled split holds every training image once
    if not args.num_labels or not args.num_classes:
        args.num_classes = spec.classes_for(args)
        args.num_labels = max(int(args.num_labels or 0), args.num_classes)
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink) if quiet else contextlib.nullcontext():
        return spec.build(args, alg)


class TrainingImages(Dataset):
    """The training images of a dataset as PIL RGB images, without labels.

    ``len`` is the number of training images; ``ds[i]`` is one ``PIL.Image`` (RGB)."""

    def __init__(self, source):
        self.source = copy.copy(source)
        self.source.targets = None  # the labels are never read from here

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: int):
        from PIL import Image

        img = self.source.__sample__(int(idx))[0]
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img)
        return img.convert("RGB") if img.mode != "RGB" else img


def training_images(args, splits: Optional[dict] = None) -> TrainingImages:
    """The TRAINING images of the registered dataset ``args.dataset`` (read from
    ``args.data_dir``) as a torch Dataset of PIL images; labels are not returned.

    They are the registry builder's unlabeled split (``splits``, built when not
    given), which with ``include_lb_to_ulb`` holds every training image once."""
    if splits is None:
        splits = build_splits(args)
    return TrainingImages(splits["train_ulb"])


def _semilearn_normalisation(dataset: str):
    try:
        from semilearn.datasets.cv_datasets import cifar
        if dataset in cifar.mean:
            return cifar.mean[dataset], cifar.std[dataset]
    except Exception:  # pragma: no cover
        pass
    from .transforms import IMAGENET_MEAN, IMAGENET_STD
    return IMAGENET_MEAN, IMAGENET_STD


def eval_transform_for(args) -> Callable:
    """The test-time transform of a run of ``args.dataset`` at ``args.img_size``: a
    PIL image (converted to RGB, any size) -> the normalised tensor the model saw.

    Order of sources: the dataset spec's ``eval_transform(args)`` hook; else the
    transform the dataset's own builder gives its test split (this builds the
    dataset, so ``args.data_dir`` must hold it); for semilearn's own datasets,
    resize + its normalisation.  A resize to ``img_size`` always comes first."""
    from torchvision import transforms as T

    from . import get_dataset_spec

    size = int(args.img_size or 32)
    spec = get_dataset_spec(args.dataset)
    hook = getattr(spec, "eval_transform", None) if spec is not None else None
    if callable(hook):
        inner = hook(args)
    elif spec is not None:
        try:
            inner = build_splits(args)["eval"].transform
        except UserError as exc:
            raise UserError(f"the test-time transform of dataset '{args.dataset}' comes from the dataset itself, "
                            f"which cannot be built here ({exc}); pass --data_dir to where the run's data is")
    else:
        mean, std = _semilearn_normalisation(args.dataset)
        inner = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    if inner is None:
        inner = T.ToTensor()
    return T.Compose([T.Lambda(lambda img: img.convert("RGB")), T.Resize((size, size)), inner])


def normalisation_of(transform) -> tuple:
    """(mean, std) of the last ``Normalize`` inside a (nested) torchvision Compose; (0.5, 0.5) if none."""
    from torchvision import transforms as T

    found = None

    def walk(t):
        nonlocal found
        if isinstance(t, T.Normalize):
            found = (tuple(float(m) for m in t.mean), tuple(float(s) for s in t.std))
        for child in getattr(t, "transforms", []) or []:
            walk(child)

    walk(transform)
    return found or ((0.5,) * 3, (0.5,) * 3)


def class_names_for(args, num_classes: Optional[int] = None) -> list:
    """Class names of ``args.dataset``: the run's own (``args.class_names``), the
    registry's, the folders of an image tree, else '0'..'C-1'."""
    from . import DATASETS

    n = int(num_classes or args.num_classes or 0)
    names = vars(args).get("class_names")  # the image folders' names, kept by the run (not a flag)
    if isinstance(names, str):
        names = [s for s in names.split(",") if s]
    if names and len(names) == n:
        return [str(s) for s in names]
    spec = DATASETS.get(args.dataset)
    if spec is not None and len(spec.class_names) == n:
        return [str(s) for s in spec.class_names]
    if spec is not None and not spec.num_classes:
        try:
            from .imagefolder import imagefolder_classes
            found = imagefolder_classes(os.path.expanduser(str(args.data_dir)))
            if len(found) == n:
                return list(found)
        except Exception:
            pass
    return [str(i) for i in range(n)]
