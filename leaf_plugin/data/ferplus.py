"""FERPlus: FER2013's faces relabeled by ten annotators each, 8 classes, from a .npz or the CSV pair.

Two label rules (``--ferplus_label``): ``plurality``, the most-voted emotion (the label a FERPlus
.npz stores), and ``majority``, FERPlus's own rule (single votes dropped, more than half of the
rest), the other faces dropped.  :func:`read_ferplus` returns each split's faces, labels and
votes, so code that needs the annotators' votes (the ambiguity diagnostics) reads them here.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..errors import UserError
from ..flags import FERPLUS_LABEL_MODES
from .builders import build_from_arrays, small_eval_transform
from .csv_files import column_index, data_rows, find_file, open_csv
from .fer2013 import FER2013_NAMES, npz_class_names, npz_in_folder, read_face_npz, read_fer2013_csv
from .images import log_info
from .registry import register_dataset

FERPLUS_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
FERPLUS_VOTE_COLUMNS = FERPLUS_NAMES + ("unknown", "NF")
FERPLUS_NPZ = ("a FERPlus .npz (DATA_DIR itself or the one in DATA_DIR) with x_train, y_train, x_val, y_val "
               "(48x48 grey uint8, labels 0..7), votes_train, votes_val ([N, 10]: " +
               ", ".join(FERPLUS_VOTE_COLUMNS) + ") and class_names " + ", ".join(FERPLUS_NAMES))
FERPLUS_CSV = ("DATA_DIR/fer2013.csv (columns emotion, pixels, Usage) and DATA_DIR/fer2013new.csv (FERPlus "
               "votes: Usage, Image name, " + ", ".join(FERPLUS_VOTE_COLUMNS) + "; one row per fer2013.csv row)")
FERPLUS_LAYOUT = f"{FERPLUS_NPZ}, or {FERPLUS_CSV}"


# ---- the label rules ----------------------------------------------------------------------
def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus's 'majority' label of each row of ``votes`` [N, 10] (FERPLUS_VOTE_COLUMNS); -1 where
    the face is dropped.

    As the FERPlus reference code: votes of 1 are dropped (outliers); the label is the emotion
    holding more than half of the remaining votes (unknown and NF count in the total); no such
    majority, a majority for unknown or NF, or no votes left -> dropped."""
    votes = np.asarray(votes, dtype=np.float64).reshape(-1, len(FERPLUS_VOTE_COLUMNS))
    kept = np.where(votes > 1, votes, 0.0)
    total, best = kept.sum(1), kept.argmax(1)
    ok = (total > 0) & (kept.max(1) > 0.5 * total) & (best < len(FERPLUS_NAMES))
    return np.where(ok, best, -1)


def plurality_labels(votes: np.ndarray) -> np.ndarray:
    """The most-voted of the eight emotions of each row of ``votes`` [N, 10]; -1 where the face is
    dropped: a tie for the top emotion, or unknown or NF votes at least the top emotion's (the
    rule of the shared FERPlus .npz's ``y_*``)."""
    votes = np.asarray(votes, dtype=np.float64).reshape(-1, len(FERPLUS_VOTE_COLUMNS))
    emotions = votes[:, :len(FERPLUS_NAMES)]
    top = emotions.max(1)
    tied = (emotions == top[:, None]).sum(1) > 1
    ok = (top > 0) & ~tied & (votes[:, len(FERPLUS_NAMES):].max(1) < top)
    return np.where(ok, emotions.argmax(1), -1)


LABEL_RULES = {"plurality": plurality_labels, "majority": majority_labels}


@dataclass(frozen=True)
class FerplusSplit:
    """One FERPlus split after the label rule: the kept faces, their labels and their votes."""

    images: np.ndarray  # [N, H, W] uint8
    labels: np.ndarray  # [N] int64, 0..7 (FERPLUS_NAMES)
    votes: Optional[np.ndarray]  # [N, 10] int64 (FERPLUS_VOTE_COLUMNS); None when the file has none
    dropped: int = 0  # faces of the file the label rule dropped

    def keep(self, mask: np.ndarray, labels: np.ndarray) -> "FerplusSplit":
        votes = None if self.votes is None else self.votes[mask]
        return FerplusSplit(self.images[mask], labels[mask].astype(np.int64), votes, int((~mask).sum()))


# ---- the .npz -----------------------------------------------------------------------------
def read_ferplus_npz(path: str, mode: str) -> Tuple[FerplusSplit, FerplusSplit]:
    """(train, val) of a FERPlus .npz under label rule ``mode``."""
    data = read_face_npz(path, FERPLUS_NAMES)
    names = npz_class_names(data)
    if names == FER2013_NAMES:
        raise UserError(f"'{path}' is a 7-class FER2013 file (class_names {', '.join(names)}); expected {FERPLUS_NPZ} "
                        f"(or --dataset fer2013 for this file)")
    if names is not None and names != FERPLUS_NAMES:
        raise UserError(f"'{path}': class_names are {', '.join(names)}; expected {', '.join(FERPLUS_NAMES)} "
                        f"(labels 0..{len(FERPLUS_NAMES) - 1})")
    has_votes = "votes_train" in data and "votes_val" in data
    if names is None and not has_votes:
        raise UserError(f"'{path}' has neither class_names nor votes_train and votes_val, so it cannot be told "
                        f"from a 7-class FER2013 file; expected {FERPLUS_NPZ}")
    if mode == "majority" and not has_votes:
        raise UserError(f"'{path}' has no votes_train and votes_val, which --ferplus_label majority needs; "
                        f"expected {FERPLUS_NPZ} (or --ferplus_label plurality: the labels stored in the file)")
    splits = []
    for part in ("train", "val"):
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        votes = check_votes(path, part, data[f"votes_{part}"], len(x)) if has_votes else None
        split = FerplusSplit(x, y, votes)
        if mode == "majority":
            labels = majority_labels(votes)
            split = split.keep(labels >= 0, labels)
        splits.append(split)
    return splits[0], splits[1]


def check_votes(path: str, part: str, votes: np.ndarray, n: int) -> np.ndarray:
    columns = len(FERPLUS_VOTE_COLUMNS)
    if votes.shape != (n, columns):
        raise UserError(f"'{path}': votes_{part} has shape {votes.shape}; expected [{n}, {columns}] vote counts "
                        f"({', '.join(FERPLUS_VOTE_COLUMNS)})")
    if not np.issubdtype(votes.dtype, np.integer) or (votes.size and votes.min() < 0):
        raise UserError(f"'{path}': votes_{part} are not all counts >= 0 (dtype {votes.dtype}); expected "
                        f"integer vote counts")
    return votes.astype(np.int64)


# ---- the CSV pair -------------------------------------------------------------------------
def read_ferplus_votes(path: str):
    """``(usages, votes, named, lines)`` of every row of fer2013new.csv (``named``: the row has an
    image name; FERPlus removed the images without one)."""
    usages, votes, named, lines = [], [], [], []
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
                counts = [float(v) if v else 0.0 for v in raw]
            except ValueError:
                raise UserError(f"{where}: the votes {','.join(raw)} are not all numbers; expected vote "
                                f"counts for {', '.join(FERPLUS_VOTE_COLUMNS)}")
            if any(v < 0 or not np.isfinite(v) for v in counts):
                raise UserError(f"{where}: a vote count is negative; expected counts >= 0")
            usages.append(usage)
            votes.append(counts)
            named.append(bool(name))
            lines.append(reader.line_num)
    return usages, np.asarray(votes, dtype=np.float64).reshape(-1, len(FERPLUS_VOTE_COLUMNS)), np.array(named), lines


def read_ferplus_csv(data_dir: str, mode: str) -> Tuple[FerplusSplit, FerplusSplit]:
    """(train, test) of the CSV pair: Training and PublicTest to train on, PrivateTest to test."""
    pixels_csv = find_file([os.path.join(data_dir, "fer2013.csv"), os.path.join(data_dir, "fer2013", "fer2013.csv")],
                           "FER2013 pixel file", FERPLUS_LAYOUT)
    votes_csv = find_file([os.path.join(data_dir, "fer2013new.csv"),
                           os.path.join(os.path.dirname(pixels_csv), "fer2013new.csv")],
                          "FERPlus label file", FERPLUS_LAYOUT)
    vote_usages, votes, named, vote_lines = read_ferplus_votes(votes_csv)
    usages, images, _, lines = read_fer2013_csv(pixels_csv, ("Training", "PublicTest", "PrivateTest"),
                                                with_emotion=False)
    if len(usages) != len(vote_usages):
        raise UserError(f"'{votes_csv}' has {len(vote_usages)} rows but '{pixels_csv}' has {len(usages)}; "
                        f"expected one FERPlus row per FER2013 row, in the same order")
    for i, (a, b) in enumerate(zip(usages, vote_usages)):
        if a != b:
            raise UserError(f"'{votes_csv}' line {vote_lines[i]} has Usage '{b}' but '{pixels_csv}' line {lines[i]} "
                            f"has '{a}'; expected the two files' rows to align")
    labels = np.where(named, LABEL_RULES[mode](votes), -1)  # no image name: FERPlus removed the image
    usages = np.asarray(usages)
    splits = []
    for part in (np.isin(usages, ("Training", "PublicTest")), usages == "PrivateTest"):
        rows = np.flatnonzero(part)
        whole = FerplusSplit(np.stack([images[i] for i in rows]), labels[rows], votes[rows].astype(np.int64))
        splits.append(whole.keep(labels[rows] >= 0, labels[rows]))
    if not len(splits[0].labels) or not len(splits[1].labels):
        raise UserError(f"'{votes_csv}' leaves no {'training' if not len(splits[0].labels) else 'PrivateTest'} "
                        f"images with a {mode} label; expected {FERPLUS_CSV}")
    return splits[0], splits[1]


# ---- the dataset --------------------------------------------------------------------------
def read_ferplus(data_dir: str, mode: str) -> Tuple[FerplusSplit, FerplusSplit]:
    """(train, test) of the FERPlus at ``data_dir`` (a .npz, or a folder with the CSV pair or one
    .npz) under label rule ``mode``: the faces, their labels and their ten votes."""
    path = os.path.expanduser(str(data_dir or ""))
    if os.path.isfile(path) and path.lower().endswith(".npz"):
        return read_ferplus_npz(path, mode)
    if not os.path.isdir(path):
        state = "is not a directory or a .npz file" if os.path.exists(path) else "does not exist"
        raise UserError(f"--data_dir '{path}' {state} (dataset 'ferplus'); expected {FERPLUS_LAYOUT}")
    if not os.path.isfile(os.path.join(path, "fer2013.csv")):
        npz = npz_in_folder(path, ("ferplus.npz", "ferplus_dev.npz"))
        if npz is not None:
            return read_ferplus_npz(npz, mode)
    return read_ferplus_csv(path, mode)


@register_dataset("ferplus", FERPLUS_NAMES, img_size=48, default_num_labels=800, layouts=FERPLUS_LAYOUT,
                  description=f"FERPlus ({len(FERPLUS_NAMES)} classes; a .npz with the ten votes per face, or "
                              "fer2013.csv + fer2013new.csv; --ferplus_label plurality|majority)",
                  eval_transform=small_eval_transform)
def build_ferplus(args, alg):
    mode = args.ferplus_label
    if mode not in FERPLUS_LABEL_MODES:
        raise UserError(f"--ferplus_label is '{mode}'; expected one of {', '.join(FERPLUS_LABEL_MODES)}")
    train, test = read_ferplus(args.data_dir, mode)
    dropped, total = train.dropped + test.dropped, len(train.labels) + len(test.labels) + train.dropped + test.dropped
    if dropped:
        log_info(args, f"ferplus: {dropped} of {total} images dropped by the {mode} rule")
    dataset_dict = build_from_arrays(args, alg, "ferplus", train.images, train.labels, test.images, test.labels,
                                     FERPLUS_NAMES, "small", 48)
    dataset_dict["eval"].votes = test.votes  # [N, 10] per test face (None without votes): the ambiguity report
    return dataset_dict
