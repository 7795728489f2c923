"""AffectNet's manually annotated images, with 7 (contempt dropped) or 8 expression classes."""
from __future__ import annotations

import csv
import os
from typing import Sequence, Tuple

from ..errors import UserError
from .builders import build_from_files, released_eval_transform
from .csv_files import column_index, data_dir_of, data_rows, find_file, open_csv
from .registry import register_dataset

# the expression ids 0..7 of AffectNet's files, in order
AFFECTNET8_NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
AFFECTNET7_NAMES = AFFECTNET8_NAMES[:-1]  # contempt dropped
AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                     "facial_landmarks", "expression", "valence", "arousal")
AFFECTNET_LAYOUT = ("DATA_DIR/training.csv and DATA_DIR/validation.csv (or under DATA_DIR/Manually_Annotated_file_lists/; "
                    "columns subDirectory_filePath, ..., expression 0..10) and the images under "
                    "DATA_DIR/Manually_Annotated_Images/ (or directly under DATA_DIR)")


def read_affectnet_csv(path: str, image_root: str, num_classes: int):
    """``(paths, targets, sources)``; expression 8..10 (none, uncertain, non-face) dropped, and 7
    (contempt) too for 7 classes.  Accepts the file with or without its header row."""
    paths, targets, sources = [], [], []
    with open_csv(path) as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None:
            raise UserError(f"'{path}' is empty; expected AffectNet rows ({', '.join(AFFECTNET_COLUMNS)})")
        path_col, expr_col = column_index(first, "subDirectory_filePath"), column_index(first, "expression")
        rows = reader
        if path_col is None or expr_col is None:
            if any(c.strip().lower() == "subdirectory_filepath" for c in first) or len(first) < 7:
                raise UserError(f"'{path}' has no 'expression' column (header: {','.join(first)}); expected the "
                                f"columns {', '.join(AFFECTNET_COLUMNS)}")
            path_col, expr_col = 0, 6  # no header row: the released column order
            rows = _chain_first(first, reader)
        for where, row in data_rows(rows, reader, path):
            try:
                rel, expr = row[path_col].strip(), row[expr_col].strip()
            except IndexError:
                raise UserError(f"{where} has {len(row)} fields; expected {', '.join(AFFECTNET_COLUMNS)}")
            try:
                label = int(expr)
            except ValueError:
                raise UserError(f"{where}: expression {expr!r} is not an integer; expected 0..10")
            if not 0 <= label <= 10:
                raise UserError(f"{where}: expression {label} is out of range; expected 0..10 "
                                f"(0..7 = {', '.join(AFFECTNET8_NAMES)}; 8..10 none, uncertain, non-face)")
            if label >= num_classes:
                continue
            paths.append(os.path.join(image_root, rel))
            targets.append(label)
            sources.append(where)
    return paths, targets, sources


def _chain_first(first, reader):
    yield first
    yield from reader


def affectnet_files(data_dir: str) -> Tuple[str, str, str]:
    """(training.csv, validation.csv, image root)."""
    lists = os.path.join(data_dir, "Manually_Annotated_file_lists")
    train_csv = find_file([os.path.join(data_dir, "training.csv"), os.path.join(lists, "training.csv")],
                          "AffectNet label file", AFFECTNET_LAYOUT)
    val_csv = find_file([os.path.join(os.path.dirname(train_csv), "validation.csv"),
                         os.path.join(data_dir, "validation.csv"), os.path.join(lists, "validation.csv")],
                        "AffectNet label file", AFFECTNET_LAYOUT)
    root = os.path.join(data_dir, "Manually_Annotated_Images")
    return train_csv, val_csv, root if os.path.isdir(root) else data_dir


def build_affectnet(args, alg, class_names: Sequence[str]):
    """AffectNet's manual annotations in ``class_names`` (its first 7 or all 8 expressions)."""
    num_classes = len(class_names)
    name = f"affectnet{num_classes}"
    data_dir = data_dir_of(args, name, AFFECTNET_LAYOUT)
    train_csv, val_csv, root = affectnet_files(data_dir)
    train = read_affectnet_csv(train_csv, root, num_classes)
    test = read_affectnet_csv(val_csv, root, num_classes)
    return build_from_files(args, alg, name, train, test, class_names, "released", 224, AFFECTNET_LAYOUT)


@register_dataset("affectnet7", AFFECTNET7_NAMES, img_size=224, default_num_labels=100, layouts=AFFECTNET_LAYOUT,
                  description=f"AffectNet manual annotations, {len(AFFECTNET7_NAMES)} classes (contempt dropped)",
                  eval_transform=released_eval_transform)
def build_affectnet7(args, alg):
    return build_affectnet(args, alg, AFFECTNET7_NAMES)


@register_dataset("affectnet8", AFFECTNET8_NAMES, img_size=224, default_num_labels=100, layouts=AFFECTNET_LAYOUT,
                  description=f"AffectNet manual annotations, {len(AFFECTNET8_NAMES)} classes",
                  eval_transform=released_eval_transform)
def build_affectnet8(args, alg):
    return build_affectnet(args, alg, AFFECTNET8_NAMES)
