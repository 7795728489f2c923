"""Square crops around detected faces, cut as the training faces were.

FER2013's 48x48 faces are close to the box the default detector draws (their side is
1.05x the ``opencv-haar`` box, median over the pasted faces of ``benchmarks/detect_faces.py``),
so the default margin adds 3% of the box side on every side.  Parts of a crop outside the
picture repeat its edge pixels.
"""
from __future__ import annotations

import numpy as np

from .boxes import Box

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
