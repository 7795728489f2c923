"""``semilearn predict --detect_faces``: faces in pictures and videos, one input at a time.

Pictures give one output line each (text: one line per face, or ``no face found``; JSON:
one object with a ``faces`` list).  A video gives one summary line and writes
``timeline.csv`` and ``timeline.png`` into the output folder (``--out``, default the current
folder; ``OUT/<video name>/`` for each video when there are several).  Inputs that cannot
be read, pictures too small to search and faces too small for the model are passed to
``fail`` (one line each); the other inputs go on.  ``--annotate DIR`` writes each picture with
its faces' boxes and top class drawn on it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Set

import numpy as np

from .boxes import DEFAULT_MARGIN, MIN_FACE_FRACTION
from .detect import DEFAULT_DETECTOR, MIN_FACE
from .faces import Face, face_text, faces_in, model_input_side, picture_record
from .media import MediaError, is_video_file, read_frames, read_picture
from .timeline import Sighting, Tracker, plot_timeline, write_csv

Emit = Callable[[str], None]
Fail = Callable[[str, str], None]


# ---- pictures with their faces drawn on them (--annotate) --------------------------------------
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


@dataclass
class FaceOptions:
    detector: str = DEFAULT_DETECTOR
    margin: float = DEFAULT_MARGIN
    min_face: int = MIN_FACE
    top: int = 3
    json: bool = False
    annotate: Optional[str] = None  # folder for annotated pictures
    every: int = 1  # analyse every n-th video frame
    out: Optional[str] = None  # folder for timelines (None: the current folder)
    batch_size: int = 64


def too_small_message(boxes, predictor, margin: float) -> str:
    side = model_input_side(predictor)
    where = "; ".join(f"x={b.x} y={b.y} w={b.w} h={b.h}" for b in boxes)
    return (f"{len(boxes)} face(s) too small for the model's {side} px input ({where}); expected faces of at "
            f"least {math.ceil(MIN_FACE_FRACTION * side / (1 + 2 * margin))} px")


def picture_line(path: str, picture, faces: Sequence[Face], names: Sequence[str], opts: FaceOptions,
                 small: Sequence = ()) -> List[str]:
    if opts.json:
        return [json.dumps(picture_record(path, picture, faces, names, opts.top, small))]
    if not faces:
        return [f"{path}: no face found"]
    return [f"{path}: {face_text(i, f, names, opts.top)}" for i, f in enumerate(faces)]


def predict_picture(path: str, predictor, opts: FaceOptions, emit: Emit, fail: Fail, taken: Set[str]) -> None:
    try:
        picture = read_picture(path)
        faces, small = faces_in(picture, predictor, opts.detector, opts.margin, opts.min_face, opts.batch_size)
    except MediaError as exc:
        fail(path, str(exc))
        return
    if small:
        fail(path, too_small_message(small, predictor, opts.margin))
    if opts.annotate:
        write_annotated(picture, faces, predictor.class_names, opts.annotate, path, taken)
    for line in picture_line(path, picture, faces, predictor.class_names, opts, small):
        emit(line)


def timeline_folder(path: str, opts: FaceOptions, several: bool) -> str:
    out = opts.out or "."
    if several:
        out = os.path.join(out, os.path.splitext(os.path.basename(path))[0])
    return out


def predict_video(path: str, predictor, opts: FaceOptions, emit: Emit, fail: Fail, out_dir: str) -> None:
    tracker, sightings, frames, small = Tracker(), [], 0, 0
    try:
        for frame in read_frames(path, opts.every):
            faces, too_small = faces_in(frame.rgb, predictor, opts.detector, opts.margin, opts.min_face,
                                        opts.batch_size)
            small += len(too_small)
            frames += 1
            for track, face in zip(tracker.assign([f.box for f in faces]), faces):
                sightings.append(Sighting(frame.index, frame.time, track, face.box, face.probs))
    except MediaError as exc:
        fail(path, str(exc) if not frames else f"stopped after {frames} analysed frames: {exc}")
        if not frames:
            return
    if small:
        side = model_input_side(predictor)
        fail(path, f"{small} face(s) too small for the model's {side} px input were skipped; expected faces of "
                   f"at least {math.ceil(MIN_FACE_FRACTION * side / (1 + 2 * opts.margin))} px")
    names = predictor.class_names
    os.makedirs(out_dir, exist_ok=True)
    csv_path, png_path = os.path.join(out_dir, "timeline.csv"), os.path.join(out_dir, "timeline.png")
    write_csv(sightings, names, csv_path)
    plot_timeline(sightings, names, png_path, title=os.path.basename(path))
    tracks = len({s.track for s in sightings})
    if opts.json:
        emit(json.dumps({"path": path, "frames_analysed": frames, "every": opts.every, "faces": len(sightings),
                         "tracks": tracks, "timeline_csv": csv_path, "timeline_png": png_path}))
    else:
        emit(f"{path}: {frames} frames analysed (every {opts.every}), {len(sightings)} faces in {tracks} "
             f"track(s) -> {csv_path}, {png_path}")


def predict_media(files: Sequence[str], predictor, opts: FaceOptions, emit: Emit, fail: Fail) -> None:
    """Pictures and videos in order (a file is a video by its extension)."""
    videos = [f for f in files if is_video_file(f)]
    taken: Set[str] = set()
    for path in files:
        if is_video_file(path):
            predict_video(path, predictor, opts, emit, fail, timeline_folder(path, opts, len(videos) > 1))
        else:
            predict_picture(path, predictor, opts, emit, fail, taken)
