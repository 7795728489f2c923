"""Pictures with their faces' boxes and top class drawn on them."""
from __future__ import annotations

import os
from typing import Sequence, Set

import numpy as np

from .faces import Face

COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60))


def draw_faces(picture: np.ndarray, faces: Sequence[Face], names: Sequence[str]):
    """A PIL image of ``picture`` with each face's box and ``class prob`` label."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(picture).convert("RGB")
    draw = ImageDraw.Draw(img)
    size = max(10, min(img.size) // 40)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    width = max(2, min(img.size) // 250)
    for i, face in enumerate(faces):
        colour = COLOURS[i % len(COLOURS)]
        b = face.box
        best = int(np.argmax(face.probs))
        label = f"{i}: {names[best]} {face.probs[best]:.2f}"
        draw.rectangle([b.x, b.y, b.x + b.w - 1, b.y + b.h - 1], outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        y = b.y - (bottom - top) - 4 if b.y - (bottom - top) - 4 >= 0 else b.y + b.h
        draw.rectangle([b.x, y, b.x + right - left + 4, y + bottom - top + 4], fill=colour)
        draw.text((b.x + 2 - left, y + 2 - top), label, fill=(255, 255, 255), font=font)
    return img


def annotated_path(out_dir: str, source: str, taken: Set[str]) -> str:
    """``OUT_DIR/<name>.png``, numbered (``<name>-1.png``...) when this run wrote that name already."""
    stem = os.path.splitext(os.path.basename(source))[0]
    path, n = os.path.join(out_dir, f"{stem}.png"), 0
    while path in taken:
        n += 1
        path = os.path.join(out_dir, f"{stem}-{n}.png")
    taken.add(path)
    return path


def write_annotated(picture: np.ndarray, faces: Sequence[Face], names: Sequence[str], out_dir: str,
                    source: str, taken: Set[str]) -> str:
    """Draw and save one picture into ``out_dir``; returns the path written."""
    os.makedirs(out_dir, exist_ok=True)
    path = annotated_path(out_dir, source, taken)
    draw_faces(picture, faces, names).save(path)
    return path
