"""Detect, crop and classify the faces of one picture, and its JSON record.

NumPy and PIL only: the predictor (a checkpoint's or an export's) turns PIL crops into
probabilities and, for LEAF networks, the gate weights of each expert level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .boxes import Box
from .boxes import DEFAULT_MARGIN, face_crop, too_small
from .detect import DEFAULT_DETECTOR, MIN_FACE, detect_faces
from .media import MediaError


@dataclass
class Face:
    """One classified face: its box in the picture's pixels and the class probabilities."""

    box: Box
    probs: np.ndarray  # [C] float64, sums to 1
    gates: Dict[str, np.ndarray] = field(default_factory=dict)  # LEAF: expert level -> [K] gate weights


def model_input_side(predictor) -> int:
    """The side of the square the model reads (every predictor says it: ``input_size``)."""
    return int(predictor.input_size)


def classify_crops(predictor, crops: Sequence[np.ndarray],
                   batch_size: int = 64) -> Tuple[np.ndarray, List[Dict[str, np.ndarray]]]:
    """(``[N, C]`` probabilities, per crop its gate weights by level) of RGB face crops, through
    the predictor's own test-time transform."""
    from PIL import Image

    probs, gates = [], []
    for i in range(0, len(crops), batch_size):
        p, g = predictor.classify([Image.fromarray(c) for c in crops[i:i + batch_size]])
        probs.append(np.asarray(p, np.float64))
        gates.extend({level: weights[j] for level, weights in g.items()} for j in range(len(p)))
    return (np.concatenate(probs) if probs else np.zeros((0, len(predictor.class_names)))), gates


def faces_in(picture: np.ndarray, predictor, detector: str = DEFAULT_DETECTOR, margin: float = DEFAULT_MARGIN,
             min_face: int = MIN_FACE, batch_size: int = 64) -> Tuple[List[Face], List[Box]]:
    """(classified faces, faces too small for the model) of an RGB picture, in reading order.
    Raises :class:`MediaError` for a picture smaller than ``min_face``."""
    h, w = picture.shape[:2]
    if min(h, w) < min_face:
        raise MediaError(f"picture is {w}x{h} px; expected at least {min_face} px on each side to find faces in "
                         f"(--min_face)")
    side = model_input_side(predictor)
    boxes = detect_faces(picture, detector, min_face)
    small = [b for b in boxes if too_small(b, side, margin)]
    kept = [b for b in boxes if not too_small(b, side, margin)]
    probs, gates = classify_crops(predictor, [face_crop(picture, b, margin) for b in kept], batch_size)
    return [Face(b, p, g) for b, p, g in zip(kept, probs, gates)], small


def classes_record(probs: np.ndarray, names: Sequence[str], top: int,
                   gates: Optional[Dict[str, np.ndarray]] = None) -> dict:
    """The JSON of one classified image or face: prediction, top classes, all probabilities and,
    for a LEAF network, the gate weights of its experts at each level."""
    order = np.argsort(-probs, kind="stable")[:top]
    record = {"prediction": names[order[0]], "index": int(order[0]),
              "top": [{"class": names[i], "index": int(i), "prob": float(probs[i])} for i in order],
              "probs": {n: float(p) for n, p in zip(names, probs)}}
    if gates:
        record["gates"] = {level: [float(w) for w in weights] for level, weights in gates.items()}
    return record


def face_record(index: int, face: Face, names: Sequence[str], top: int) -> dict:
    """The JSON object of one face: its index and box, then :func:`classes_record`."""
    return {"face": index, "box": face.box.as_dict(), **classes_record(face.probs, names, top, face.gates)}


def picture_record(path: str, picture: np.ndarray, faces: Sequence[Face], names: Sequence[str], top: int,
                   small: Sequence[Box] = ()) -> dict:
    """The JSON object of one picture (``predict --detect_faces --json`` and ``serve``'s
    ``/api/predict``): its size, its faces, and the boxes of faces too small for the model."""
    record = {"path": path, "width": int(picture.shape[1]), "height": int(picture.shape[0]),
              "num_faces": len(faces), "faces": [face_record(i, f, names, top) for i, f in enumerate(faces)]}
    if small:
        record["too_small"] = [b.as_dict() for b in small]
    if not faces:
        record["note"] = "no face found"
    return record


def face_text(index: int, face: Face, names: Sequence[str], top: int) -> str:
    order = np.argsort(-face.probs, kind="stable")[:top]
    b = face.box
    return (f"face {index} at x={b.x} y={b.y} w={b.w} h={b.h}: "
            + ", ".join(f"{names[i]} ({face.probs[i]:.3f})" for i in order))
