"""FERPlus: FER2013's pixels relabeled by ten annotators (fer2013new.csv), majority label."""
from __future__ import annotations

import csv
import os
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError
from .builders import build_from_arrays, small_eval_transform
from .csv_files import column_index, data_dir_of, data_rows, find_file, open_csv
from .fer2013 import read_fer2013_csv
from .images import log_info
from .registry import register_dataset

FERPLUS_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
FERPLUS_VOTE_COLUMNS = FERPLUS_NAMES + ("unknown", "NF")
FERPLUS_LAYOUT = ("DATA_DIR/fer2013.csv (columns emotion, pixels, Usage) and DATA_DIR/fer2013new.csv (FERPlus "
                  "votes: Usage, Image name, " + ", ".join(FERPLUS_VOTE_COLUMNS) + "; one row per fer2013.csv row)")


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


@register_dataset("ferplus", FERPLUS_NAMES, img_size=48, default_num_labels=100, layouts=FERPLUS_LAYOUT,
                  description=f"FERPlus ({len(FERPLUS_NAMES)} classes; fer2013.csv pixels + fer2013new.csv "
                              "majority votes)",
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
    # FERPlus's split: Training and PublicTest to train on, PrivateTest to test
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
                             np.array([labels[i] for i in test]), FERPLUS_NAMES, "small", 48)
