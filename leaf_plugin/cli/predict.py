"""``semilearn predict``: classify image files with a checkpoint ``semilearn train`` wrote.

    semilearn predict --load_path RUN/model_best.pth face.jpg faces/ [--json] [--top K] [--device cpu]
    semilearn predict --model model.onnx faces/      (an export: onnxruntime, no torch imported)
    semilearn predict faces/                         (the shipped model, benchmarks/checkpoints/)

:mod:`leaf_plugin.deploy.models` chooses the model; a checkpoint is loaded back by
:func:`leaf_plugin.runs.load_predictor` (the run's configuration from its checkpoint or
folder, the network built as training builds it, the EMA weights, no dataset loaded).
Every image, grey or colour and of any size, goes through the model's
test-time transform (RGB, resized to the run's ``img_size``, the dataset's
normalisation).  Folders are read recursively (image files by extension) and
classified in batches; a file that cannot be read is reported on stderr, one
line each, and skipped, and the exit code is then 1.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Iterable, List, Tuple

import numpy as np

from ..deploy.faces import classes_record
from ..errors import UserError
from ..flags import OneLineParser, optional_bool
from ..imagefiles import IMAGE_EXTENSIONS, is_image_file, one_line


def parser() -> OneLineParser:
    from ..deploy.boxes import DEFAULT_MARGIN
    from ..deploy.detect import DEFAULT_DETECTOR, DETECTORS, MIN_FACE

    p = OneLineParser(prog="semilearn predict",
                      description="Classify images with a checkpoint written by 'semilearn train' (its EMA weights) "
                                  "or a model written by 'semilearn export'. Prints the top classes of each image "
                                  "with their probabilities; --detect_faces finds the faces in photos and videos first.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders (read recursively); "
                                                                     "with --detect_faces also videos")
    p.add_argument("--load_path", default=None, help="checkpoint (.pth) written by semilearn train, or its run folder "
                                                     "(default: the shipped FERPlus model, see --model)")
    p.add_argument("--model", default=None, help="instead of --load_path: a .onnx or TorchScript file written by "
                                                 "semilearn export (its .json beside it); with neither, the shipped "
                                                 "model benchmarks/checkpoints/ferplus_leaf_fixmatch_s0.onnx")
    p.add_argument("--json", action="store_true", help="one JSON object per image instead of text")
    p.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=64, help="images per forward pass")
    p.add_argument("--data_dir", default=None, help="where the run's dataset is, when its test-time transform needs "
                                                    "it (default: the run's own --data_dir)")
    optional_bool(p, "--progress", True, "show a progress bar over the batches")
    faces = p.add_argument_group("faces in photos and videos")
    faces.add_argument("--detect_faces", action="store_true",
                       help="find the faces in each picture or video and classify each (square crops with a margin)")
    faces.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS),
                       help=f"face detector (default {DEFAULT_DETECTOR}; see benchmarks/detect_faces.py)")
    faces.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                       help=f"added on every side of a face box, as a fraction of its side (default {DEFAULT_MARGIN})")
    faces.add_argument("--min_face", type=int, default=MIN_FACE, help=f"smallest face searched for, in pixels "
                                                                       f"(default {MIN_FACE})")
    faces.add_argument("--annotate", default=None, metavar="DIR",
                       help="write each picture with its face boxes and top class drawn on it into DIR")
    faces.add_argument("--every", type=int, default=1, metavar="N", help="videos: analyse every N-th frame (default 1)")
    faces.add_argument("--out", default=None, metavar="DIR",
                       help="videos: folder for timeline.csv and timeline.png (default: the current folder; "
                            "DIR/<video name>/ each when there are several videos)")
    return p


# ---- inputs -------------------------------------------------------------------------------
def expand_inputs(inputs: Iterable[str]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """(image files to classify, [(path, why)] that cannot be): folders are walked
    recursively for image files; named files are always tried."""
    files, failed = [], []
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_image_file(f))
        elif os.path.isfile(item):
            files.append(item)
        else:
            failed.append((item, "does not exist"))
    return files, failed


def read_image(path: str):
    """The picture as a decoded RGB PIL image."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return img.convert("RGB")


def format_text(path: str, top: List[Tuple[str, float]]) -> str:
    return f"{path}: " + ", ".join(f"{name} ({p:.3f})" for name, p in top)


def run(argv: List[str]) -> int:
    from tqdm.auto import tqdm

    opts = parser().parse_intermixed_args(argv)
    if opts.top <= 0:
        raise UserError(f"--top is {opts.top}; expected a positive integer")
    if opts.batch_size <= 0:
        raise UserError(f"--batch_size is {opts.batch_size}; expected a positive integer")
    if opts.every <= 0 or opts.min_face <= 0 or not 0 <= opts.margin <= 2:
        raise UserError(f"--every {opts.every}, --min_face {opts.min_face}, --margin {opts.margin}; expected positive "
                        f"integers and a margin in 0..2")
    if not opts.detect_faces and (opts.annotate or opts.out or opts.every != 1):
        raise UserError("--annotate, --out and --every work on detected faces; expected --detect_faces with them")
    from ..deploy.models import load_model

    loaded = load_model(opts.load_path, opts.model, opts.device, opts.data_dir, opts.gpu)
    if loaded.info.get("shipped"):
        print(f"semilearn predict: no --load_path or --model: using {loaded.describe()}", file=sys.stderr)
    predictor = loaded.predictor
    if opts.detect_faces:
        from ..deploy.media import VIDEO_EXTENSIONS, expand_media
        from ..deploy.pipeline import FaceOptions, predict_media

        files, failed = expand_media(opts.inputs)
        if not files and not failed:
            raise UserError(f"no image or video files in {', '.join(repr(i) for i in opts.inputs)}; expected "
                            f"{', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)} files or folders holding them")
        for path, why in failed:
            print(f"semilearn predict: '{path}': {why}", file=sys.stderr)

        def fail(path: str, why: str) -> None:
            failed.append((path, why))
            print(f"semilearn predict: '{path}': {why}", file=sys.stderr, flush=True)

        face_opts = FaceOptions(opts.detector, opts.margin, opts.min_face, min(opts.top, len(predictor.class_names)),
                                opts.json, opts.annotate, opts.every, opts.out, opts.batch_size)
        predict_media(files, predictor, face_opts, lambda line: print(line, flush=True), fail)
        return 1 if failed else 0
    names = predictor.class_names
    k = min(opts.top, len(names))
    files, failed = expand_inputs(opts.inputs)
    if not files and not failed:
        raise UserError(f"no image files in {', '.join(repr(i) for i in opts.inputs)}; expected image files "
                        f"({', '.join(IMAGE_EXTENSIONS)}) or folders holding them")

    def report_failure(path: str, why: str) -> None:
        tqdm.write(f"semilearn predict: cannot read '{path}': {why}", file=sys.stderr)

    for path, why in failed:
        report_failure(path, why)
    batches = [files[i:i + opts.batch_size] for i in range(0, len(files), opts.batch_size)]
    bar = tqdm(batches, desc="predict", unit="batch", file=sys.stderr, leave=False, mininterval=1.0,
               disable=not opts.progress or len(batches) < 2)
    for chunk in bar:
        images, paths = [], []
        for path in chunk:
            try:
                images.append(read_image(path))
                paths.append(path)
            except Exception as exc:  # PIL: OSError, SyntaxError, ValueError, DecompressionBombError...
                failed.append((path, f"{type(exc).__name__}: {one_line(exc)}"))
                report_failure(path, failed[-1][1])
        if not images:
            continue
        probs, gates = predictor.classify(images)
        for row, (path, p) in enumerate(zip(paths, probs)):
            if opts.json:
                row_gates = {level: g[row] for level, g in gates.items()}
                line = json.dumps({"path": path, **classes_record(p, names, k, row_gates)})
            else:
                idx = np.argsort(-p, kind="stable")[:k]
                line = format_text(path, [(names[i], float(p[i])) for i in idx])
            if opts.progress and len(batches) > 1:
                tqdm.write(line, file=sys.stdout)
            else:
                print(line)
    bar.close()
    return 1 if failed else 0
