"""RAF-DB basic: a label list and aligned face images, decoded lazily."""
from __future__ import annotations

import os

from ..errors import UserError
from .builders import build_from_files, released_eval_transform
from .csv_files import data_dir_of, find_file, parse_label
from .registry import register_dataset

RAFDB_NAMES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RAFDB_LAYOUT = (f"DATA_DIR/EmoLabel/list_patition_label.txt ('train_00001.jpg 5' lines, labels "
                f"1..{len(RAFDB_NAMES)} = {', '.join(RAFDB_NAMES)}) and "
                "DATA_DIR/Image/aligned/train_00001_aligned.jpg")


def read_rafdb(data_dir: str):
    """``{'train': (paths, targets, sources), 'test': ...}`` from RAF-DB's label list (labels 1..7 -> 0..6)."""
    # the released file name is misspelt; a corrected copy is accepted too
    label_file = find_file([os.path.join(data_dir, "EmoLabel", "list_patition_label.txt"),
                            os.path.join(data_dir, "EmoLabel", "list_partition_label.txt")],
                           "RAF-DB label file", RAFDB_LAYOUT)
    image_dir = os.path.join(data_dir, "Image", "aligned")
    if not os.path.isdir(image_dir):
        raise UserError(f"RAF-DB image folder '{image_dir}' does not exist; expected {RAFDB_LAYOUT}")
    parts = {"train": ([], [], []), "test": ([], [], [])}
    with open(label_file, encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f"'{label_file}' line {line_no}"
            if len(fields) != 2:
                raise UserError(f"{where} is {line.strip()!r}; expected 'NAME.jpg LABEL' (e.g. 'train_00001.jpg 5')")
            name, label = fields
            label = parse_label(label, where, 1, RAFDB_NAMES)
            split = name.split("_", 1)[0]
            if split not in parts:
                raise UserError(f"{where}: image name '{name}' starts with neither train_ nor test_; "
                                f"expected {RAFDB_LAYOUT}")
            stem, ext = os.path.splitext(name)
            paths, targets, sources = parts[split]
            paths.append(os.path.join(image_dir, f"{stem}_aligned{ext or '.jpg'}"))
            targets.append(label - 1)
            sources.append(where)
    if not parts["train"][0]:
        raise UserError(f"'{label_file}' lists no train_* images; expected {RAFDB_LAYOUT}")
    return parts


@register_dataset("rafdb", RAFDB_NAMES, img_size=224, default_num_labels=100, layouts=RAFDB_LAYOUT,
                  description=f"RAF-DB basic ({len(RAFDB_NAMES)} classes; "
                              "EmoLabel/list_patition_label.txt + Image/aligned/)",
                  eval_transform=released_eval_transform)
def build_rafdb(args, alg):
    data_dir = data_dir_of(args, "rafdb", RAFDB_LAYOUT)
    parts = read_rafdb(data_dir)
    return build_from_files(args, alg, "rafdb", parts["train"], parts["test"], RAFDB_NAMES,
                            "released", 224, RAFDB_LAYOUT)
