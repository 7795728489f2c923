"""Recall and false positives of the face detectors on real photos with known boxes.

Usage: python benchmarks/detect_faces.py [--npz ../shared/data/fer2013/fer2013_dev.npz]
       [--canvases 4] [--faces 12] [--seed 0] [--detectors opencv-haar,skimage-lbp]

Pictures:
- ``astronaut``: scikit-image's bundled ``astronaut.png`` (one face, box checked by hand:
  ``ASTRONAUT_FACE``);
- ``fer-plain-K`` / ``fer-scene-K``: ``--faces`` FER2013 faces (validation split, blank ones
  skipped) pasted at random places and sizes (48..160 px, no overlap) onto a 1024x768 canvas,
  a grey gradient with noise (``plain``) or scikit-image's bundled photos tiled (``scene``);
  the pasted squares are the true boxes.

A detection is a hit when its IoU with an unmatched true box is at least 0.3 (greedy
matching, best IoU first); the table also gives recall at IoU >= 0.5. False positives are
detections left unmatched at IoU 0.3.  Tests import :func:`compose` and :data:`ASTRONAUT_FACE`.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import List, Sequence, Tuple

import numpy as np

from leaf_plugin.deploy.boxes import Box, greedy_match, iou_matrix
from leaf_plugin.deploy.detect import DETECTORS, detect_faces

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_NPZ = os.path.join(HERE, "..", "..", "shared", "data", "fer2013", "fer2013_dev.npz")
ASTRONAUT_FACE = Box(175, 65, 100, 108)  # hairline to chin, ear to ear: checked by eye on astronaut.png
CANVAS = (768, 1024)  # height, width
SCENES = ("coffee", "rocket", "chelsea", "camera", "coins", "brick")


def real_faces(npz: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` grey 48x48 FER2013 validation faces, blank ones skipped, in a seeded random order."""
    with np.load(npz) as data:
        x = data["x_val"]
    keep = np.flatnonzero(x.reshape(len(x), -1).std(axis=1) > 20)
    return x[np.random.default_rng(seed).permutation(keep)[:count]]


def background(kind: str, rng: np.random.Generator, shape: Tuple[int, int] = CANVAS) -> np.ndarray:
    """``[H, W, 3]`` uint8 canvas: a noisy grey gradient, or bundled scikit-image photos tiled."""
    h, w = shape
    if kind == "plain":
        ramp = np.linspace(90, 170, w)[None, :] + np.linspace(-20, 20, h)[:, None]
        grey = np.clip(ramp + rng.normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    from PIL import Image
    from skimage import data

    canvas = Image.new("RGB", (w, h))
    names = rng.permutation(SCENES)
    for i, (top, left) in enumerate([(0, 0), (0, w // 2), (h // 2, 0), (h // 2, w // 2)]):
        photo = np.asarray(getattr(data, names[i % len(names)])())
        photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=2)
        canvas.paste(Image.fromarray(photo[..., :3]).resize((w // 2, h // 2)), (left, top))
    return np.asarray(canvas).copy()


def compose(faces: Sequence[np.ndarray], kind: str = "plain", seed: int = 0, sizes=(48, 160),
            shape: Tuple[int, int] = CANVAS) -> Tuple[np.ndarray, List[Box]]:
    """Paste grey faces onto a canvas at random non-overlapping places and sizes:
    (RGB picture, their boxes)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    canvas = background(kind, rng, shape)
    boxes: List[Box] = []
    for face in faces:
        for _ in range(200):
            side = int(rng.integers(sizes[0], sizes[1] + 1))
            x, y = int(rng.integers(0, shape[1] - side)), int(rng.integers(0, shape[0] - side))
            box = Box(x, y, side, side)
            # keep a gap: no two faces closer than a quarter of a face
            grown = Box(x - side // 4, y - side // 4, side + side // 2, side + side // 2)
            if not boxes or iou_matrix([grown], boxes).max() == 0:
                break
        else:
            continue
        patch = np.asarray(Image.fromarray(face).resize((side, side), Image.BILINEAR))
        canvas[y:y + side, x:x + side] = patch[..., None]
        boxes.append(box)
    return canvas, boxes


def score(found: Sequence[Box], truth: Sequence[Box], threshold: float) -> Tuple[int, int]:
    """(true boxes found, detections left over) with greedy IoU matching."""
    hits = len(greedy_match(iou_matrix(truth, found), threshold)) if found and truth else 0
    return hits, len(found) - hits


def pictures(npz: str, canvases: int, faces: int, seed: int):
    from skimage import data

    yield "astronaut", data.astronaut(), [ASTRONAUT_FACE]
    if not os.path.isfile(npz):
        print(f"(FER2013 file {npz} not found: astronaut only)")
        return
    pool = real_faces(npz, canvases * faces * 2, seed)
    for i in range(canvases):
        kind = "plain" if i % 2 == 0 else "scene"
        picture, boxes = compose(pool[i * faces:(i + 1) * faces], kind, seed + i)
        yield f"fer-{kind}-{i}", picture, boxes


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--npz", default=DEFAULT_NPZ)
    p.add_argument("--canvases", type=int, default=4)
    p.add_argument("--faces", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detectors", default=",".join(DETECTORS))
    opts = p.parse_args(argv)
    names = opts.detectors.split(",")
    totals = {d: np.zeros(4) for d in names}  # true boxes, hits@0.3, hits@0.5, false positives
    print("| picture | detector | faces | found (IoU>=0.3) | found (IoU>=0.5) | false positives | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for title, picture, truth in pictures(opts.npz, opts.canvases, opts.faces, opts.seed):
        for name in names:
            start = time.perf_counter()
            found = detect_faces(picture, name)
            seconds = time.perf_counter() - start
            hits3, false3 = score(found, truth, 0.3)
            hits5, _ = score(found, truth, 0.5)
            totals[name] += (len(truth), hits3, hits5, false3)
            print(f"| {title} | {name} | {len(truth)} | {hits3} | {hits5} | {false3} | {seconds:.2f} |")
    print()
    print("| detector | recall (IoU>=0.3) | recall (IoU>=0.5) | false positives per picture |")
    print("|---|---:|---:|---:|")
    count = 1 + (opts.canvases if os.path.isfile(opts.npz) else 0)
    for name, (n, h3, h5, fp) in totals.items():
        print(f"| {name} | {h3 / n:.3f} | {h5 / n:.3f} | {fp / count:.2f} |")


if __name__ == "__main__":
    main()
