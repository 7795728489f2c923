"""Inputs of ``semilearn predict --detect_faces``: pictures and videos, read as RGB arrays."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Tuple

import numpy as np

from ..imagefiles import IMAGE_EXTENSIONS, is_image_file, one_line

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class MediaError(Exception):
    """An input that cannot be read (reported on one line; the other inputs go on)."""


def is_video_file(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS) and not os.path.basename(name).startswith(".")


def expand_media(inputs: Iterable[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(picture and video files, [(path, why)] that cannot be read): folders are walked
    recursively for both; named files are always tried."""
    files, failed = [], []
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                             if is_image_file(f) or is_video_file(f))
        elif os.path.isfile(item):
            files.append(item)
        else:
            failed.append((item, "does not exist"))
    return files, failed


def upright_rgb(img) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of an opened PIL image (decoded here), turned upright as its EXIF
    orientation says."""
    from PIL import ImageOps

    img.load()
    return np.asarray(ImageOps.exif_transpose(img).convert("RGB")).copy()


def read_picture(path: str) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of a picture file, turned upright as its EXIF orientation says."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return upright_rgb(img)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        kind = "picture" if path.lower().endswith(IMAGE_EXTENSIONS) else "picture or video"
        raise MediaError(f"not a readable {kind} ({type(exc).__name__}: {one_line(exc)}); "
                         f"expected an image ({', '.join(IMAGE_EXTENSIONS)}) or a video "
                         f"({', '.join(VIDEO_EXTENSIONS)})")


@dataclass
class Frame:
    index: int
    time: float  # seconds
    rgb: np.ndarray


def video_fps(capture) -> float:
    import cv2

    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and fps > 0 else 25.0


def read_frames(path: str, every: int = 1) -> Iterator[Frame]:
    """Every ``every``-th frame of a video (the first is frame 0), as RGB.  Raises
    :class:`MediaError` when the codec cannot open it or it has no frame."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # the reason goes into our one line, not FFmpeg's
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise MediaError("the video codec cannot open it; expected a video OpenCV reads (e.g. MJPG .avi, "
                             "mp4v/H.264 .mp4)")
        fps, index, any_frame = video_fps(capture), 0, False
        while True:
            ok = capture.grab()
            if not ok:
                break
            if index % every == 0:
                ok, bgr = capture.retrieve()
                if not ok or bgr is None:
                    break
                any_frame = True
                yield Frame(index, index / fps, np.ascontiguousarray(bgr[..., ::-1]))
            index += 1
        if not any_frame:
            raise MediaError("no frame could be decoded; expected a video OpenCV reads (e.g. MJPG .avi, "
                             "mp4v/H.264 .mp4)")
    finally:
        capture.release()
