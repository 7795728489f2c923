"""Face boxes ``(x, y, w, h)`` in pixels: their overlap, greedy matching, and the square crops cut around them.

Crops are cut as the training faces were. FER2013's 48x48 faces are close to the box the default detector draws (their side is
1.05x the ``opencv-haar`` box, median over the pasted faces of ``benchmarks/detect_faces.py``),
so the default margin adds 3% of the box side on every side.  Parts of a crop outside the
picture repeat its edge pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: top-left corner ``(x, y)``, width and height, in pixels."""

    x: int
    y: int
    w: int
    h: int

    def as_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "w": self.w, "h": self.h}

    def as_array(self) -> np.ndarray:
        return np.array([self.x, self.y, self.w, self.h], dtype=np.float64)


def boxes_array(boxes: Sequence[Box]) -> np.ndarray:
    """``[N, 4]`` float array of ``(x, y, w, h)``."""
    return np.array([b.as_array() for b in boxes], dtype=np.float64).reshape(-1, 4)


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """``[len(a), len(b)]`` intersection over union."""
    pa, pb = boxes_array(a)[:, None, :], boxes_array(b)[None, :, :]
    ix = np.clip(np.minimum(pa[..., 0] + pa[..., 2], pb[..., 0] + pb[..., 2]) - np.maximum(pa[..., 0], pb[..., 0]), 0, None)
    iy = np.clip(np.minimum(pa[..., 1] + pa[..., 3], pb[..., 1] + pb[..., 3]) - np.maximum(pa[..., 1], pb[..., 1]), 0, None)
    inter = ix * iy
    union = pa[..., 2] * pa[..., 3] + pb[..., 2] * pb[..., 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def greedy_match(iou: np.ndarray, threshold: float) -> List[Tuple[int, int]]:
    """Pairs ``(row, col)`` taken in decreasing IoU, each row and column at most once,
    IoU at least ``threshold``."""
    pairs, rows, cols = [], set(), set()
    if iou.size == 0:
        return pairs
    order = np.argsort(-iou, axis=None, kind="stable")
    for r, c in zip(*np.unravel_index(order, iou.shape)):
        if iou[r, c] < threshold:
            break
        if r not in rows and c not in cols:
            pairs.append((int(r), int(c)))
            rows.add(r)
            cols.add(c)
    return pairs


def suppress_overlaps(boxes: Sequence[Box], threshold: float = 0.3) -> List[Box]:
    """Non-maximum suppression without scores: larger boxes win over boxes they overlap."""
    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].w * boxes[i].h)
    kept: List[Box] = []
    for i in order:
        if not kept or iou_matrix([boxes[i]], kept).max() < threshold:
            kept.append(boxes[i])
    return kept


def reading_order(boxes: Sequence[Box]) -> List[Box]:
    """Boxes sorted left to right, then top to bottom (stable face indices in a picture)."""
    return sorted(boxes, key=lambda b: (b.x, b.y))


# ---- square crops --------------------------------------------------------------------------
DEFAULT_MARGIN = 0.03
# a face whose crop is smaller than this fraction of the model's input side is reported, not classified
MIN_FACE_FRACTION = 0.25


def square_box(box: Box, margin: float = DEFAULT_MARGIN) -> Box:
    """The square around ``box``'s centre, its side ``max(w, h) * (1 + 2 * margin)``."""
    side = max(1, int(round(max(box.w, box.h) * (1 + 2 * margin))))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return Box(int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)


def crop(picture: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``box`` in ``picture`` (``[H, W]`` or ``[H, W, C]``), edge pixels repeated outside it."""
    h, w = picture.shape[:2]
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    inside = picture[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    pad = [(max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w))] + [(0, 0)] * (picture.ndim - 2)
    return np.pad(inside, pad, mode="edge") if any(p != (0, 0) for p in pad) else inside


def face_crop(picture: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square, margined crop of one face."""
    return crop(picture, square_box(box, margin))


def too_small(box: Box, input_side: int, margin: float = DEFAULT_MARGIN) -> bool:
    """True when the face's crop is under ``MIN_FACE_FRACTION`` of the model's input side."""
    return square_box(box, margin).w < MIN_FACE_FRACTION * input_side
