"""Face detectors whose weights ship inside installed packages (nothing is downloaded).

- ``opencv-haar``: OpenCV's ``haarcascade_frontalface_alt2.xml`` (``cv2.data.haarcascades``,
  opencv-python-headless 4.x; OpenCV 5 dropped ``CascadeClassifier``);
- ``skimage-lbp``: scikit-image's ``lbpcascade_frontalface_opencv.xml`` run by
  ``skimage.feature.Cascade`` (OpenCV 4 cannot read that file's old format).

``benchmarks/detect_faces.py`` measures them; the default is the one with the best recall
at few false positives there.  Pictures are grey-scaled, and shrunk so that their longer side
is at most ``max_side`` pixels before detection; boxes come back in the original pixels.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Callable, Dict, List

import numpy as np

from ..errors import UserError
from .boxes import Box, reading_order, suppress_overlaps

DEFAULT_DETECTOR = "opencv-haar"
MIN_FACE = 24  # the cascades' own window: smaller faces are not found
MAX_SIDE = 1280


def grey(image: np.ndarray) -> np.ndarray:
    """``[H, W]`` uint8 luminance of a ``[H, W]`` or ``[H, W, 3]`` uint8 RGB picture."""
    if image.ndim == 2:
        return image
    weights = np.array([0.299, 0.587, 0.114])
    return np.clip(image[..., :3].astype(np.float64) @ weights + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=None)
def _opencv_cascade(path: str):
    try:
        import cv2
    except ImportError as exc:
        raise UserError(f"the OpenCV face detectors need opencv-python-headless ({exc}); expected it installed "
                        f"(pip install opencv-python-headless, see setup.cfg)")
    if not hasattr(cv2, "CascadeClassifier"):
        raise UserError(f"OpenCV {cv2.__version__} has no CascadeClassifier; expected opencv-python-headless 4.x "
                        f"(see setup.cfg) or --detector skimage-lbp")
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise UserError(f"cannot load the face cascade '{path}'; expected the file shipped with the package")
    return cascade


def _haar_file() -> str:
    import cv2

    return os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt2.xml")


def _lbp_file() -> str:
    from skimage.data import lbp_frontal_face_cascade_filename

    return lbp_frontal_face_cascade_filename()


def _opencv(path_of: Callable[[], str]) -> Callable[[np.ndarray, int], List[Box]]:
    def detect(image: np.ndarray, min_size: int) -> List[Box]:
        found = _opencv_cascade(path_of()).detectMultiScale(image, scaleFactor=1.1, minNeighbors=5,
                                                            minSize=(min_size, min_size))
        return [Box(*map(int, b)) for b in np.asarray(found).reshape(-1, 4)]
    return detect


@lru_cache(maxsize=None)
def _skimage_cascade():
    from skimage.feature import Cascade

    return Cascade(_lbp_file())


def _skimage(image: np.ndarray, min_size: int) -> List[Box]:
    found = _skimage_cascade().detect_multi_scale(image.astype(np.float64) / 255.0, scale_factor=1.1, step_ratio=1,
                                                  min_size=(min_size, min_size),
                                                  max_size=(min(image.shape), min(image.shape)),
                                                  min_neighbor_number=4)
    return [Box(int(d["c"]), int(d["r"]), int(d["width"]), int(d["height"])) for d in found]


DETECTORS: Dict[str, Callable[[np.ndarray, int], List[Box]]] = {
    "opencv-haar": _opencv(_haar_file),
    "skimage-lbp": _skimage,
}


def check_detector(name: str) -> str:
    if name not in DETECTORS:
        raise UserError(f"--detector is '{name}'; expected one of: {', '.join(DETECTORS)}")
    return name


def detect_faces(image: np.ndarray, detector: str = DEFAULT_DETECTOR, min_size: int = MIN_FACE,
                 max_side: int = MAX_SIDE) -> List[Box]:
    """Faces in an RGB or grey uint8 picture, as boxes in its pixels, in reading order."""
    g = grey(np.ascontiguousarray(image))
    scale = max(1.0, max(g.shape) / max_side)
    if scale > 1.0:
        from PIL import Image

        small = Image.fromarray(g).resize((round(g.shape[1] / scale), round(g.shape[0] / scale)), Image.BILINEAR)
        g = np.asarray(small)
    size = max(8, int(round(min_size / scale)))
    if min(g.shape) < size:
        return []
    found = DETECTORS[check_detector(detector)](g, size)
    if scale > 1.0:
        found = [Box(*(int(round(v * scale)) for v in (b.x, b.y, b.w, b.h))) for b in found]
    return reading_order(suppress_overlaps(found))
