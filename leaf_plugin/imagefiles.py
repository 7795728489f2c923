"""Which files are pictures (by their extension), and error text on one line.

A foundation module with no third-party import, so that the ONNX path of ``predict`` and
``serve`` (onnxruntime, OpenCV, NumPy, PIL) can name image files without importing the
datasets (semilearn, torch).
"""
from __future__ import annotations

import os

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def is_image_file(name: str) -> bool:
    """True for a file name with a picture extension that is not hidden."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not os.path.basename(name).startswith(".")
