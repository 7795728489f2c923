"""Pictures of real faces for the serve tests and ``benchmarks/serve_load.py``: FERPlus Valid faces
(48x48 grey, ``../shared/data/ferplus/ferplus_dev.npz``) upscaled onto a plain grey canvas with
``benchmarks/detect_faces.py``'s ``compose``, kept only when the default detector finds every
face and nothing else (checked here, so a test knows how many boxes to expect)."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import List, Tuple

import numpy as np

from conftest import FERPLUS_NPZ, REPO  # noqa: E402  (tests/ is on the path)


@lru_cache(maxsize=None)
def compose_module():
    spec = importlib.util.spec_from_file_location("detect_faces_bench", REPO / "benchmarks" / "detect_faces.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=None)
def face_pool(count: int = 200) -> np.ndarray:
    """``count`` FERPlus Valid faces (blank ones skipped), in a seeded order."""
    return compose_module().real_faces(str(FERPLUS_NPZ), count, seed=0)


def picture_with_faces(n: int, first_seed: int = 0, sizes=(150, 190)) -> Tuple[np.ndarray, List]:
    """(``[H, W, 3]`` uint8 picture of ``n`` faces, the detector's ``n`` boxes in reading order)."""
    from leaf_plugin.deploy.boxes import greedy_match, iou_matrix
    from leaf_plugin.deploy.detect import detect_faces

    bench, pool = compose_module(), face_pool()
    shape = (300, 300) if n == 1 else (480, 720) if n <= 4 else (720, 960)
    for seed in range(first_seed, first_seed + 60):
        start = (seed * n) % (len(pool) - n)
        picture, truth = bench.compose(pool[start:start + n], "plain", seed=seed, sizes=sizes, shape=shape)
        found = detect_faces(picture)
        if len(truth) == n == len(found) and len(greedy_match(iou_matrix(truth, found), 0.3)) == n:
            return picture, found
    raise RuntimeError(f"no composed picture of {n} faces had every face detected")
