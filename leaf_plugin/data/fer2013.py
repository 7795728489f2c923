"""FER2013 from any of its releases: Kaggle's fer2013.csv, train/ test/ image folders, or a .npz.

:func:`read_fer2013_csv` also reads the pixels FERPlus relabels (:mod:`.ferplus`).
"""
from __future__ import annotations

import csv
import glob
import os
import warnings
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError
from .builders import build_from_arrays, build_from_files, small_eval_transform
from .csv_files import column_index, data_dir_of, data_rows, open_csv, parse_label
from .imagefolder import read_class_folders
from .registry import register_dataset

FER2013_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_LAST = len(FER2013_NAMES) - 1  # labels are 0..FER2013_LAST
FER2013_LAYOUT = ("DATA_DIR/fer2013.csv (columns emotion, pixels, Usage), or DATA_DIR/train/<class>/ and "
                  "DATA_DIR/test/<class>/ with class folders " + ", ".join(FER2013_NAMES) +
                  ", or a .npz file (DATA_DIR itself or the one in DATA_DIR) with x_train, y_train, x_val, y_val "
                  f"(48x48 grey uint8, labels 0..{FER2013_LAST})")


# ---- Kaggle's CSV -------------------------------------------------------------------------
def parse_pixels(text: str, where: str) -> np.ndarray:
    """One FER2013 ``pixels`` field -> [side, side] uint8."""
    with warnings.catch_warnings():
        # numpy only warns about unparsable text; make that an error to report
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
    rows whose Usage is not in ``keep_usages``.  Labels are checked against FER2013_NAMES."""
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
            if usage not in keep_usages:  # a placeholder keeps row i at index i (FERPlus aligns by it)
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


# ---- .npz arrays ------------------------------------------------------------------------
def npz_in_folder(path: str, preferred: Sequence[str]) -> Optional[str]:
    """The .npz in folder ``path``: the only one, else the first of ``preferred`` there (None if none)."""
    found = sorted(glob.glob(os.path.join(path, "*.npz")))
    if len(found) <= 1:
        return found[0] if found else None
    for name in preferred:
        if os.path.join(path, name) in found:
            return os.path.join(path, name)
    raise UserError(f"--data_dir '{path}' holds several .npz files ({', '.join(os.path.basename(p) for p in found)}); "
                    f"expected one, or --data_dir naming the file itself")


def npz_class_names(data: dict) -> Optional[tuple]:
    """The file's ``class_names`` array as lower-case strings, or None when it has none."""
    if "class_names" not in data:
        return None
    return tuple(str(n).strip().lower() for n in np.asarray(data["class_names"]).ravel())


def read_face_npz(path: str, class_names: Sequence[str]) -> dict:
    """Every array of a .npz of faces; ``x_train``, ``y_train``, ``x_val``, ``y_val`` checked
    (uint8 images, labels 0..len(class_names)-1), the other arrays as stored."""
    last = len(class_names) - 1
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
            raise UserError(f"'{path}': {yk} has dtype {y.dtype}; expected integer labels 0..{last}")
        bad = np.flatnonzero((y < 0) | (y > last))
        if len(bad):
            raise UserError(f"'{path}': {yk}[{bad[0]}] is {y[bad[0]]}, out of range; expected labels "
                            f"0..{last} ({', '.join(class_names)})")
        data[xk], data[yk] = x, y.astype(np.int64)
    return data


def read_fer2013_npz(path: str):
    """``(x_train, y_train, x_val, y_val)`` of a .npz, checked (uint8 images, labels in range)."""
    data = read_face_npz(path, FER2013_NAMES)
    names = npz_class_names(data)
    if names is not None and names != FER2013_NAMES:
        raise UserError(f"'{path}': class_names are {', '.join(names)}; expected {', '.join(FER2013_NAMES)} "
                        f"(labels 0..{FER2013_LAST})")
    return data["x_train"], data["y_train"], data["x_val"], data["y_val"]


# ---- image folders ----------------------------------------------------------------------
def read_fer2013_tree(data_dir: str):
    """``(train, test)`` as ``(paths, targets, sources)`` from the image-folder release."""
    return read_class_folders(
        data_dir, FER2013_NAMES, FER2013_LAYOUT, "FER2013 image folder", fold=str.lower,
        unknown=lambda folder, name: (f"folder '{os.path.join(folder, name)}' is not a FER2013 class; expected "
                                      f"class folders {', '.join(FER2013_NAMES)}"))


# ---- the dataset ------------------------------------------------------------------------
@register_dataset("fer2013", FER2013_NAMES, img_size=48, default_num_labels=175, layouts=FER2013_LAYOUT,
                  description=f"FER2013 ({len(FER2013_NAMES)} classes; Kaggle fer2013.csv, train/ test/ image "
                              "folders, or a .npz)",
                  eval_transform=small_eval_transform)
def build_fer2013(args, alg):
    """``--data_dir``: a .npz or .csv file, or a folder holding fer2013.csv, else train/ and
    test/ class folders, else one .npz (looked for in that order)."""
    path = os.path.expanduser(str(args.data_dir or ""))
    if os.path.isfile(path) and path.lower().endswith(".npz"):
        return fer2013_from_arrays(args, alg, read_fer2013_npz(path))
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return fer2013_from_csv(args, alg, path)
    data_dir = data_dir_of(args, "fer2013", FER2013_LAYOUT)
    if os.path.isfile(os.path.join(data_dir, "fer2013.csv")):
        return fer2013_from_csv(args, alg, os.path.join(data_dir, "fer2013.csv"))
    if os.path.isdir(os.path.join(data_dir, "train")) or os.path.isdir(os.path.join(data_dir, "test")):
        train, test = read_fer2013_tree(data_dir)
        return build_from_files(args, alg, "fer2013", train, test, FER2013_NAMES, "small", 48, FER2013_LAYOUT)
    npz = npz_in_folder(data_dir, ("fer2013.npz", "fer2013_dev.npz"))
    if npz is None:
        raise UserError(f"--data_dir '{data_dir}' holds neither fer2013.csv, train/ and test/ folders, nor a "
                        f".npz file; expected {FER2013_LAYOUT}")
    return fer2013_from_arrays(args, alg, read_fer2013_npz(npz))


def fer2013_from_arrays(args, alg, arrays):
    tr_x, tr_y, te_x, te_y = arrays
    return build_from_arrays(args, alg, "fer2013", tr_x, tr_y, te_x, te_y, FER2013_NAMES, "small", 48)


def fer2013_from_csv(args, alg, csv_path: str):
    # Kaggle's split: Training to train on, PublicTest to test (PrivateTest is left out)
    usages, images, emotions, _ = read_fer2013_csv(csv_path, ("Training", "PublicTest"))
    train = [i for i, u in enumerate(usages) if u == "Training"]
    test = [i for i, u in enumerate(usages) if u == "PublicTest"]
    if not train or not test:
        raise UserError(f"'{csv_path}' has no {'Training' if not train else 'PublicTest'} rows; expected "
                        f"Usage Training (train) and PublicTest (test)")
    arrays = (np.stack([images[i] for i in train]), np.array([emotions[i] for i in train]),
              np.stack([images[i] for i in test]), np.array([emotions[i] for i in test]))
    return fer2013_from_arrays(args, alg, arrays)
