"""Any ``train/<class>/``, ``test/<class>/`` image tree; the classes are the sorted folder names.

:func:`read_class_folders` also reads FER2013's image-folder release (:mod:`.fer2013`).
"""
from __future__ import annotations

import os
from typing import Callable, List, Sequence

from ..errors import UserError
from .builders import build_from_files, released_eval_transform
from .csv_files import data_dir_of
from .images import list_image_tree
from .registry import get_dataset_spec, register_dataset

IMAGEFOLDER_LAYOUT = "DATA_DIR/train/<class>/*.jpg and DATA_DIR/test/<class>/*.jpg (classes = sorted folder names)"


def read_class_folders(data_dir: str, classes: Sequence[str], layout: str, what: str,
                       unknown: Callable[[str, str], str], fold: Callable[[str], str] = str) -> list:
    """``[(paths, targets, sources)]`` for ``train`` and ``test`` from ``<split>/<class>/`` folders;
    ``fold(folder name)`` is looked up in ``classes``, ``unknown(folder, name)`` words the error."""
    out = []
    for split in ("train", "test"):
        folder = os.path.join(data_dir, split)
        if not os.path.isdir(folder):
            raise UserError(f"{what} '{folder}' does not exist; expected {layout}")
        paths, targets = [], []
        for name, files in list_image_tree(folder):
            if fold(name) not in classes:
                raise UserError(unknown(folder, name))
            paths += files
            targets += [list(classes).index(fold(name))] * len(files)
        if not paths:
            raise UserError(f"{what} '{folder}' holds no images; expected {layout}")
        out.append((paths, targets, [""] * len(paths)))
    return out


def imagefolder_classes(data_dir: str) -> List[str]:
    """The sorted class folders under DATA_DIR/train (hidden ones left out)."""
    train = os.path.join(data_dir, "train")
    if not os.path.isdir(train):
        raise UserError(f"image folder '{train}' does not exist; expected {IMAGEFOLDER_LAYOUT}")
    classes = [name for name in sorted(os.listdir(train))
               if not name.startswith(".") and os.path.isdir(os.path.join(train, name))]
    if not classes:
        raise UserError(f"image folder '{train}' has no class folders; expected {IMAGEFOLDER_LAYOUT}")
    return classes


def num_classes_from(args) -> int:
    """The number of classes of ``args.dataset`` as the CLI needs it before building.

    The registered number for every dataset but ``imagefolder`` (registered without class names),
    whose classes are the folders under DATA_DIR/train.  When that folder is absent
    and ``args.num_classes`` is set (a checkpoint's config, say) it is returned as
    is; the builder checks it against the tree later."""
    spec = get_dataset_spec(args.dataset)
    if spec is None or spec.num_classes:
        return spec.num_classes if spec is not None else int(args.num_classes or 0)
    data_dir = os.path.expanduser(str(args.data_dir or ""))
    if not os.path.isdir(os.path.join(data_dir, "train")) and args.num_classes:
        return int(args.num_classes)
    data_dir_of(args, args.dataset, IMAGEFOLDER_LAYOUT)
    return len(imagefolder_classes(data_dir))


@register_dataset("imagefolder", (), img_size=224, layouts=IMAGEFOLDER_LAYOUT, count_classes=num_classes_from,
                  description="any train/<class>/, test/<class>/ image tree (classes: sorted folder names)",
                  eval_transform=released_eval_transform)
def build_imagefolder(args, alg):
    data_dir = data_dir_of(args, "imagefolder", IMAGEFOLDER_LAYOUT)
    classes = imagefolder_classes(data_dir)
    if args.num_classes not in (None, 0, len(classes)):
        raise UserError(f"--num_classes {args.num_classes} does not match the {len(classes)} class folders under "
                        f"'{os.path.join(data_dir, 'train')}' ({', '.join(classes)})")
    args.num_classes = len(classes)
    args.class_names = ",".join(classes)  # a string, so it is kept in the checkpoint's args
    out = read_class_folders(
        data_dir, classes, IMAGEFOLDER_LAYOUT, "image folder",
        unknown=lambda folder, name: (f"class folder '{os.path.join(folder, name)}' has no counterpart under "
                                      f"'{os.path.join(data_dir, 'train')}'; expected the test classes to be "
                                      f"training classes ({', '.join(classes)})"))
    return build_from_files(args, alg, "imagefolder", out[0], out[1], tuple(classes),
                            "released", 224, IMAGEFOLDER_LAYOUT)
