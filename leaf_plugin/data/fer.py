"""Facial-expression datasets: RAF-DB, FERPlus, AffectNet (7 and 8 classes), FER2013
and any ``train/<class>/``, ``test/<class>/`` image tree.

Each builder reads the labels (and FER2013's pixels) at build time and checks
every listed image cheaply (exists, PIL recognises its header; see
:mod:`.images`); RAF-DB, AffectNet and image folders are decoded lazily, one
image per ``__sample__``.  The labeled subset is ``--num_labels // C`` images
per class chosen with ``--seed`` (:func:`.splits.balanced_split`), the rest
unlabeled.  Bad input is a ``UserError`` naming the path (and line) and what
was expected.

Default augmentation: ``small`` at 48 px for ``fer2013`` and ``ferplus``,
``released`` at 224 px for the others (``--aug_recipe`` / ``--img_size`` override).
"""
from __future__ import annotations

import csv
import glob
import os
import warnings
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from .arrays import ArrayDataset
from .images import check_images, file_dataset_class, list_image_tree, log_info
from .registry import get_dataset_spec, register_dataset
from .splits import ssl_dataset_dict
from .transforms import recipe_transforms

def data_rows(rows, reader, path: str):
    """``(where, row)`` for the non-blank rows of a csv ``reader`` (``rows`` iterates it)."""
    for row in rows:
        if row and any(field.strip() for field in row):
            yield f"'{path}' line {reader.line_num}", row


def parse_label(text: str, where: str, first: int, names: Sequence[str], field: str = "label") -> int:
    """``text`` as a class id in ``first .. first + len(names) - 1``; UserError naming ``where`` otherwise."""
    last = first + len(names) - 1
    expected = f"expected {first}..{last} ({', '.join(names)})"
    try:
        label = int(text)
    except ValueError:
        raise UserError(f"{where}: {field} {text!r} is not an integer; {expected}")
    if not first <= label <= last:
        raise UserError(f"{where}: {field} {label} is out of range; {expected}")
    return label


def small_eval_transform(args):
    """Test-time transform of the 48 px datasets (``--aug_recipe`` / ``--img_size`` honoured)."""
    return recipe_transforms(args, "small", 48)[2]


def released_eval_transform(args):
    """Test-time transform of the 224 px datasets (``--aug_recipe`` / ``--img_size`` honoured)."""
    return recipe_transforms(args, "released", 224)[2]


FER2013_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
RAFDB_NAMES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
FERPLUS_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
FERPLUS_VOTE_COLUMNS = FERPLUS_NAMES + ("unknown", "NF")
AFFECTNET8_NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
AFFECTNET7_NAMES = AFFECTNET8_NAMES[:7]
AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                     "facial_landmarks", "expression", "valence", "arousal")

RAFDB_LAYOUT = ("DATA_DIR/EmoLabel/list_patition_label.txt ('train_00001.jpg 5' lines, labels 1..7 = "
                "surprise, fear, disgust, happiness, sadness, anger, neutral) and "
                "DATA_DIR/Image/aligned/train_00001_aligned.jpg")
FERPLUS_LAYOUT = ("DATA_DIR/fer2013.csv (columns emotion, pixels, Usage) and DATA_DIR/fer2013new.csv (FERPlus "
                  "votes: Usage, Image name, " + ", ".join(FERPLUS_VOTE_COLUMNS) + "; one row per fer2013.csv row)")
AFFECTNET_LAYOUT = ("DATA_DIR/training.csv and DATA_DIR/validation.csv (or under DATA_DIR/Manually_Annotated_file_lists/; "
                    "columns subDirectory_filePath, ..., expression 0..10) and the images under "
                    "DATA_DIR/Manually_Annotated_Images/ (or directly under DATA_DIR)")
FER2013_LAYOUT = ("DATA_DIR/fer2013.csv (columns emotion, pixels, Usage), or DATA_DIR/train/<class>/ and "
                  "DATA_DIR/test/<class>/ with class folders " + ", ".join(FER2013_NAMES) +
                  ", or a .npz file (DATA_DIR itself or the one in DATA_DIR) with x_train, y_train, x_val, y_val "
                  "(48x48 grey uint8, labels 0..6)")
IMAGEFOLDER_LAYOUT = "DATA_DIR/train/<class>/*.jpg and DATA_DIR/test/<class>/*.jpg (classes = sorted folder names)"


# ---- shared helpers ---------------------------------------------------------------------
def data_dir_of(args, dataset: str, layout: str) -> str:
    path = os.path.expanduser(str(getattr(args, "data_dir", "") or ""))
    if not os.path.isdir(path):
        state = "is not a directory" if os.path.exists(path) else "does not exist"
        raise UserError(f"--data_dir '{path}' {state} (dataset '{dataset}'); expected {layout}")
    return path


def find_file(candidates: Sequence[str], what: str, layout: str) -> str:
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise UserError(f"{what} '{candidates[0]}' does not exist; expected {layout}")


def open_csv(path: str):
    return open(path, newline="", encoding="utf-8-sig")


def column_index(header: Sequence[str], name: str) -> Optional[int]:
    wanted = name.strip().lower()
    for i, col in enumerate(header):
        if col.strip().lower() == wanted:
            return i
    return None


def default_transforms(args, recipe: str, size: int):
    return recipe_transforms(args, recipe, size)


def build_from_files(args, alg, dataset, train, test, num_classes, class_names, recipe, size, layout):
    """dataset_dict from ``(paths, targets, sources)`` for train and test, after the image checks."""
    skip = bool(getattr(args, "skip_bad_images", False))
    kept = []
    for (paths, targets, sources), part in ((train, "training"), (test, "test")):
        keep = check_images(paths, sources, skip, layout, args, what=f"{dataset} {part} images")
        kept.append(([paths[i] for i in keep], np.asarray(targets, dtype=np.int64)[keep]))
    (tr_x, tr_y), (te_x, te_y) = kept
    if len(te_x) == 0:
        raise UserError(f"dataset '{dataset}' in '{args.data_dir}' has no test images; expected {layout}")
    log_info(args, f"{dataset}: {len(tr_x)} training and {len(te_x)} test images in {num_classes} classes "
                   f"(training per class: {', '.join(f'{n} {c}' for n, c in zip(np.bincount(tr_y, minlength=num_classes), class_names))})")
    return ssl_dataset_dict(args, alg, tr_x, tr_y, te_x, te_y, num_classes,
                            default_transforms(args, recipe, size), file_dataset_class(args), class_names)


def build_from_arrays(args, alg, dataset, tr_x, tr_y, te_x, te_y, num_classes, class_names, recipe, size):
    log_info(args, f"{dataset}: {len(tr_x)} training and {len(te_x)} test images in {num_classes} classes")
    return ssl_dataset_dict(args, alg, tr_x, tr_y, te_x, te_y, num_classes,
                            default_transforms(args, recipe, size), ArrayDataset, class_names)


# ---- RAF-DB -----------------------------------------------------------------------------
def read_rafdb(data_dir: str):
    """``{'train': (paths, targets, sources), 'test': ...}`` from RAF-DB's label list (labels 1..7 -> 0..6)."""
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


@register_dataset("rafdb", 7, RAFDB_NAMES, img_size=224, default_num_labels=100, layouts=RAFDB_LAYOUT,
                  description="RAF-DB basic (7 classes; EmoLabel/list_patition_label.txt + Image/aligned/)",
                  eval_transform=released_eval_transform)
def build_rafdb(args, alg):
    data_dir = data_dir_of(args, "rafdb", RAFDB_LAYOUT)
    parts = read_rafdb(data_dir)
    return build_from_files(args, alg, "rafdb", parts["train"], parts["test"], 7, RAFDB_NAMES,
                            "released", 224, RAFDB_LAYOUT)


# ---- FER2013 CSV and FERPlus ------------------------------------------------------------
def parse_pixels(text: str, where: str) -> np.ndarray:
    """One FER2013 ``pixels`` field -> [side, side] uint8."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
            bad = False
        except (ValueError, DeprecationWarning):
            bad = True
    side = int(round(np.sqrt(len(values)))) if not bad else 0
    if bad or side * side != len(values) or side == 0 or len(text.split()) != len(values):
        raise UserError(f"{where}: 'pixels' is not a square image of space-separated integers; "
                        f"expected 2304 values 0..255 (48x48)")
    if values.min() < 0 or values.max() > 255:
        raise UserError(f"{where}: 'pixels' has values outside 0..255; expected grey levels 0..255")
    return values.astype(np.uint8).reshape(side, side)


def read_fer2013_csv(path: str, keep_usages: Sequence[str], with_emotion: bool = True):
    """``(usages, images, emotions, lines)`` of every row; images (and emotions) are None for
    rows whose Usage is not in ``keep_usages``.  Labels are checked to be 0..6."""
    usages, images, emotions, lines = [], [], [], []
    side = None
    with open_csv(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise UserError(f"'{path}' is empty; expected a header 'emotion,pixels,Usage' and one row per image")
        cols = {name: column_index(header, name) for name in ("emotion", "pixels", "Usage")}
        needed = ("emotion", "pixels", "Usage") if with_emotion else ("pixels", "Usage")
        missing = [n for n in needed if cols[n] is None]
        if missing:
            raise UserError(f"'{path}' has no column '{missing[0]}' (header: {','.join(header)}); "
                            f"expected columns emotion, pixels, Usage")
        for where, row in data_rows(reader, reader, path):
            try:
                usage = row[cols["Usage"]].strip()
                pixels = row[cols["pixels"]]
                emotion = row[cols["emotion"]].strip() if cols["emotion"] is not None else None
            except IndexError:
                raise UserError(f"{where} has {len(row)} fields; expected emotion, pixels, Usage")
            if usage not in ("Training", "PublicTest", "PrivateTest"):
                raise UserError(f"{where}: Usage is {usage!r}; expected Training, PublicTest or PrivateTest")
            usages.append(usage)
            lines.append(reader.line_num)
            if usage not in keep_usages:
                images.append(None)
                emotions.append(None)
                continue
            img = parse_pixels(pixels, where)
            if side is None:
                side = img.shape
            elif img.shape != side:
                raise UserError(f"{where}: image is {img.shape[0]}x{img.shape[1]} but earlier rows are "
                                f"{side[0]}x{side[1]}; expected one size for every row")
            images.append(img)
            if with_emotion:
                label = parse_label(emotion, where, 0, FER2013_NAMES, "emotion")
                emotions.append(label)
            else:
                emotions.append(None)
    return usages, images, emotions, lines


def ferplus_label(votes: Sequence[float]) -> Optional[int]:
    """FERPlus 'majority' label of one row of the 10 vote columns (FERPLUS_VOTE_COLUMNS), or None.

    As the FERPlus reference code: votes of 1 are dropped (outliers); the label is the
    emotion holding more than half of the remaining votes (unknown and NF count in the
    total); no such majority, a majority for unknown or NF (not a face), or no votes
    left -> None (the image is dropped)."""
    kept = [float(v) if float(v) > 1 else 0.0 for v in votes]
    total = sum(kept)
    if total <= 0:
        return None
    best = max(kept)
    if best <= 0.5 * total:
        return None
    label = kept.index(best)
    return label if label < len(FERPLUS_NAMES) else None


def read_ferplus_votes(path: str):
    """``(usages, labels, lines)`` of every row of fer2013new.csv (label None: dropped)."""
    usages, labels, lines = [], [], []
    with open_csv(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        expected = "Usage, Image name, " + ", ".join(FERPLUS_VOTE_COLUMNS)
        if header is None:
            raise UserError(f"'{path}' is empty; expected a header with the columns {expected}")
        cols = {}
        for name in ("Usage", "Image name") + FERPLUS_VOTE_COLUMNS:
            cols[name] = column_index(header, name)
            if cols[name] is None:
                raise UserError(f"'{path}' has no column '{name}' (header: {','.join(header)}); "
                                f"expected the columns {expected}")
        vote_cols = [cols[n] for n in FERPLUS_VOTE_COLUMNS]
        for where, row in data_rows(reader, reader, path):
            try:
                usage = row[cols["Usage"]].strip()
                name = row[cols["Image name"]].strip()
                raw = [row[c].strip() for c in vote_cols]
            except IndexError:
                raise UserError(f"{where} has {len(row)} fields; expected {len(header)} ({expected})")
            try:
                votes = [float(v) if v else 0.0 for v in raw]
            except ValueError:
                raise UserError(f"{where}: the votes {','.join(raw)} are not all numbers; expected vote "
                                f"counts for {', '.join(FERPLUS_VOTE_COLUMNS)}")
            if any(v < 0 or not np.isfinite(v) for v in votes):
                raise UserError(f"{where}: a vote count is negative; expected counts >= 0")
            usages.append(usage)
            labels.append(ferplus_label(votes) if name else None)  # no image name: FERPlus removed the image
            lines.append(reader.line_num)
    return usages, labels, lines


@register_dataset("ferplus", 8, FERPLUS_NAMES, img_size=48, default_num_labels=100, layouts=FERPLUS_LAYOUT,
                  description="FERPlus (8 classes; fer2013.csv pixels + fer2013new.csv majority votes)",
                  eval_transform=small_eval_transform)
def build_ferplus(args, alg):
    data_dir = data_dir_of(args, "ferplus", FERPLUS_LAYOUT)
    pixels_csv = find_file([os.path.join(data_dir, "fer2013.csv"), os.path.join(data_dir, "fer2013", "fer2013.csv")],
                           "FER2013 pixel file", FERPLUS_LAYOUT)
    votes_csv = find_file([os.path.join(data_dir, "fer2013new.csv"),
                           os.path.join(os.path.dirname(pixels_csv), "fer2013new.csv")],
                          "FERPlus label file", FERPLUS_LAYOUT)
    vote_usages, labels, vote_lines = read_ferplus_votes(votes_csv)
    usages, images, _, lines = read_fer2013_csv(pixels_csv, ("Training", "PublicTest", "PrivateTest"),
                                                with_emotion=False)
    if len(usages) != len(vote_usages):
        raise UserError(f"'{votes_csv}' has {len(vote_usages)} rows but '{pixels_csv}' has {len(usages)}; "
                        f"expected one FERPlus row per FER2013 row, in the same order")
    for i, (a, b) in enumerate(zip(usages, vote_usages)):
        if a != b:
            raise UserError(f"'{votes_csv}' line {vote_lines[i]} has Usage '{b}' but '{pixels_csv}' line {lines[i]} "
                            f"has '{a}'; expected the two files' rows to align")
    train = [i for i, u in enumerate(usages) if u in ("Training", "PublicTest") and labels[i] is not None]
    test = [i for i, u in enumerate(usages) if u == "PrivateTest" and labels[i] is not None]
    dropped = len(usages) - len(train) - len(test)
    log_info(args, f"ferplus: {dropped} of {len(usages)} images dropped (no majority after removing single votes, "
                   f"unknown, not a face, or no image)")
    if not train or not test:
        raise UserError(f"'{votes_csv}' leaves no {'training' if not train else 'PrivateTest'} images with a "
                        f"majority label; expected {FERPLUS_LAYOUT}")
    tr_x = np.stack([images[i] for i in train])
    te_x = np.stack([images[i] for i in test])
    return build_from_arrays(args, alg, "ferplus", tr_x, np.array([labels[i] for i in train]), te_x,
                             np.array([labels[i] for i in test]), 8, FERPLUS_NAMES, "small", 48)


# ---- AffectNet --------------------------------------------------------------------------
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


def build_affectnet(args, alg, num_classes: int):
    name = f"affectnet{num_classes}"
    data_dir = data_dir_of(args, name, AFFECTNET_LAYOUT)
    train_csv, val_csv, root = affectnet_files(data_dir)
    train = read_affectnet_csv(train_csv, root, num_classes)
    test = read_affectnet_csv(val_csv, root, num_classes)
    names = AFFECTNET8_NAMES[:num_classes]
    return build_from_files(args, alg, name, train, test, num_classes, names, "released", 224, AFFECTNET_LAYOUT)


@register_dataset("affectnet7", 7, AFFECTNET7_NAMES, img_size=224, default_num_labels=100, layouts=AFFECTNET_LAYOUT,
                  description="AffectNet manual annotations, 7 classes (contempt dropped)",
                  eval_transform=released_eval_transform)
def build_affectnet7(args, alg):
    return build_affectnet(args, alg, 7)


@register_dataset("affectnet8", 8, AFFECTNET8_NAMES, img_size=224, default_num_labels=100, layouts=AFFECTNET_LAYOUT,
                  description="AffectNet manual annotations, 8 classes",
                  eval_transform=released_eval_transform)
def build_affectnet8(args, alg):
    return build_affectnet(args, alg, 8)


# ---- FER2013: CSV, image folders or .npz ------------------------------------------------
def fer2013_npz_path(path: str) -> Optional[str]:
    """The .npz in folder ``path``: the only one, else fer2013.npz or fer2013_dev.npz."""
    found = sorted(glob.glob(os.path.join(path, "*.npz")))
    if len(found) <= 1:
        return found[0] if found else None
    for preferred in ("fer2013.npz", "fer2013_dev.npz"):
        if os.path.join(path, preferred) in found:
            return os.path.join(path, preferred)
    raise UserError(f"--data_dir '{path}' holds several .npz files ({', '.join(os.path.basename(p) for p in found)}); "
                    f"expected one, or --data_dir naming the file itself")


def read_fer2013_npz(path: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise UserError(f"'{path}' cannot be read as a .npz file ({type(exc).__name__}); expected x_train, "
                        f"y_train, x_val, y_val arrays")
    for key in ("x_train", "y_train", "x_val", "y_val"):
        if key not in data:
            raise UserError(f"'{path}' has no array '{key}' (it has {', '.join(sorted(data)) or 'none'}); "
                            f"expected x_train, y_train, x_val, y_val")
    if "class_names" in data:
        names = tuple(str(n).strip().lower() for n in np.asarray(data["class_names"]).ravel())
        if names != FER2013_NAMES:
            raise UserError(f"'{path}': class_names are {', '.join(names)}; expected {', '.join(FER2013_NAMES)} "
                            f"(labels 0..6)")
    out = []
    for xk, yk in (("x_train", "y_train"), ("x_val", "y_val")):
        x, y = data[xk], np.asarray(data[yk])
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise UserError(f"'{path}': {xk} has shape {x.shape}; expected [N, H, W] grey (or [N, H, W, 1|3]) images")
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < 0 or x.max() > 255):
                raise UserError(f"'{path}': {xk} has dtype {x.dtype}; expected uint8 grey levels 0..255")
            x = x.astype(np.uint8)
        if y.ndim != 1 or len(y) != len(x):
            raise UserError(f"'{path}': {yk} has shape {y.shape}; expected [{len(x)}] labels")
        if not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"'{path}': {yk} has dtype {y.dtype}; expected integer labels 0..6")
        bad = np.flatnonzero((y < 0) | (y > 6))
        if len(bad):
            raise UserError(f"'{path}': {yk}[{bad[0]}] is {y[bad[0]]}, out of range; expected labels 0..6 "
                            f"({', '.join(FER2013_NAMES)})")
        out += [x, y.astype(np.int64)]
    return tuple(out)


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


def read_fer2013_tree(data_dir: str):
    """``(train, test)`` as ``(paths, targets, sources)`` from the image-folder release."""
    return read_class_folders(
        data_dir, FER2013_NAMES, FER2013_LAYOUT, "FER2013 image folder", fold=str.lower,
        unknown=lambda folder, name: (f"folder '{os.path.join(folder, name)}' is not a FER2013 class; expected "
                                      f"class folders {', '.join(FER2013_NAMES)}"))


@register_dataset("fer2013", 7, FER2013_NAMES, img_size=48, default_num_labels=175, layouts=FER2013_LAYOUT,
                  description="FER2013 (7 classes; Kaggle fer2013.csv, train/ test/ image folders, or a .npz)",
                  eval_transform=small_eval_transform)
def build_fer2013(args, alg):
    """``--data_dir``: a .npz or .csv file, or a folder holding fer2013.csv, else train/ and
    test/ class folders, else one .npz (looked for in that order)."""
    path = os.path.expanduser(str(getattr(args, "data_dir", "") or ""))
    if os.path.isfile(path) and path.lower().endswith(".npz"):
        return fer2013_from_arrays(args, alg, read_fer2013_npz(path))
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return fer2013_from_csv(args, alg, path)
    data_dir = data_dir_of(args, "fer2013", FER2013_LAYOUT)
    if os.path.isfile(os.path.join(data_dir, "fer2013.csv")):
        return fer2013_from_csv(args, alg, os.path.join(data_dir, "fer2013.csv"))
    if os.path.isdir(os.path.join(data_dir, "train")) or os.path.isdir(os.path.join(data_dir, "test")):
        train, test = read_fer2013_tree(data_dir)
        return build_from_files(args, alg, "fer2013", train, test, 7, FER2013_NAMES, "small", 48, FER2013_LAYOUT)
    npz = fer2013_npz_path(data_dir)
    if npz is None:
        raise UserError(f"--data_dir '{data_dir}' holds neither fer2013.csv, train/ and test/ folders, nor a "
                        f".npz file; expected {FER2013_LAYOUT}")
    return fer2013_from_arrays(args, alg, read_fer2013_npz(npz))


def fer2013_from_arrays(args, alg, arrays):
    tr_x, tr_y, te_x, te_y = arrays
    return build_from_arrays(args, alg, "fer2013", tr_x, tr_y, te_x, te_y, 7, FER2013_NAMES, "small", 48)


def fer2013_from_csv(args, alg, csv_path: str):
    usages, images, emotions, _ = read_fer2013_csv(csv_path, ("Training", "PublicTest"))
    train = [i for i, u in enumerate(usages) if u == "Training"]
    test = [i for i, u in enumerate(usages) if u == "PublicTest"]
    if not train or not test:
        raise UserError(f"'{csv_path}' has no {'Training' if not train else 'PublicTest'} rows; expected "
                        f"Usage Training (train) and PublicTest (test)")
    arrays = (np.stack([images[i] for i in train]), np.array([emotions[i] for i in train]),
              np.stack([images[i] for i in test]), np.array([emotions[i] for i in test]))
    return fer2013_from_arrays(args, alg, arrays)


# ---- any image tree ---------------------------------------------------------------------
def imagefolder_classes(data_dir: str) -> List[str]:
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

    The registered number for every dataset but ``imagefolder`` (registered with 0),
    whose classes are the folders under DATA_DIR/train.  When that folder is absent
    and ``args.num_classes`` is set (a checkpoint's config, say) it is returned as
    is; the builder checks it against the tree later."""
    spec = get_dataset_spec(args.dataset)
    if spec is None or spec.num_classes:
        return spec.num_classes if spec is not None else int(args.num_classes or 0)
    data_dir = os.path.expanduser(str(getattr(args, "data_dir", "") or ""))
    if not os.path.isdir(os.path.join(data_dir, "train")) and getattr(args, "num_classes", None):
        return int(args.num_classes)
    data_dir_of(args, args.dataset, IMAGEFOLDER_LAYOUT)
    return len(imagefolder_classes(data_dir))


@register_dataset("imagefolder", 0, (), img_size=224, layouts=IMAGEFOLDER_LAYOUT, count_classes=num_classes_from,
                  description="any train/<class>/, test/<class>/ image tree (classes: sorted folder names)",
                  eval_transform=released_eval_transform)
def build_imagefolder(args, alg):
    data_dir = data_dir_of(args, "imagefolder", IMAGEFOLDER_LAYOUT)
    classes = imagefolder_classes(data_dir)
    if getattr(args, "num_classes", None) not in (None, 0, len(classes)):
        raise UserError(f"--num_classes {args.num_classes} does not match the {len(classes)} class folders under "
                        f"'{os.path.join(data_dir, 'train')}' ({', '.join(classes)})")
    args.num_classes = len(classes)
    args.class_names = ",".join(classes)  # a string, so it is kept in the checkpoint's args
    out = read_class_folders(
        data_dir, classes, IMAGEFOLDER_LAYOUT, "image folder",
        unknown=lambda folder, name: (f"class folder '{os.path.join(folder, name)}' has no counterpart under "
                                      f"'{os.path.join(data_dir, 'train')}'; expected the test classes to be "
                                      f"training classes ({', '.join(classes)})"))
    return build_from_files(args, alg, "imagefolder", out[0], out[1], len(classes), tuple(classes),
                            "released", 224, IMAGEFOLDER_LAYOUT)
