"""semilearn datasets of images: in-memory arrays, or files read lazily and checked cheaply first.

:class:`ArrayDataset` holds uint8 arrays (FER2013, FERPlus, the digits).

RAF-DB, AffectNet and image-folder trees are too big to hold in memory, so
:class:`FileDataset` keeps paths and decodes one image per ``__sample__``.

What is checked when the dataset is built (:func:`check_images`), for every
listed file: that it exists (``os.stat``), and that PIL recognises it
(``Image.open(...).verify()``).  ``verify`` parses the header; for PNG it also
reads every chunk and checks its CRC, for JPEG it reads the header only.  That
costs tens of microseconds per file (threads hide the latency of slow disks):
seconds for RAF-DB, well under a minute for AffectNet's ~290k images.  A full
decode of every image up front would take minutes to hours on AffectNet, so it
is not done; an image whose body is damaged (a truncated JPEG, say) is found
when it is first read, and :class:`FileDataset` then raises
:class:`ImageReadError` (a ``UserError``: one line naming the file, exit code 2)
— or, with ``--skip_bad_images true``, uses the next readable image instead and
logs a warning naming the skipped file.
"""
from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from semilearn.datasets.cv_datasets.datasetbase import BasicDataset

from ..errors import UserError
from ..imagefiles import is_image_file, one_line
from ..logs import get_run_logger, training_logger_name

SKIP_HINT = "pass --skip_bad_images true to skip such images"
# how many following images a --skip_bad_images dataset tries in place of one it cannot decode
MAX_SUBSTITUTES = 32


# ---- in-memory arrays -----------------------------------------------------------------------
def to_rgb(img: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, 1] grey, or [H, W, 3] colour -> [H, W, 3] uint8."""
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img, dtype=np.uint8)


class ArrayDataset(BasicDataset):
    """``BasicDataset`` over a uint8 array of grey or colour images; grey becomes 3-channel."""

    def __sample__(self, idx):
        img, target = super().__sample__(idx)
        return to_rgb(img), target


class ImageReadError(UserError):
    """An image that cannot be read.  One line even when torch's DataLoader re-raises
    it from a worker process (it builds a new exception from a multi-line traceback)."""

    def __init__(self, message: str = ""):
        message = str(message)
        if "Original Traceback" in message:  # torch.utils.data re-raising a worker's exception
            lines = [line for line in message.strip().splitlines() if line.strip()]
            last = lines[-1].strip() if lines else message
            head, sep, tail = last.partition(": ")
            message = tail if sep and head.endswith(type(self).__name__) else last
        super().__init__(one_line(message))


def load_image(path: str) -> Image.Image:
    """The fully decoded image as RGB (grey becomes 3-channel); ImageReadError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
        raise ImageReadError(f"image '{path}' cannot be decoded ({type(exc).__name__}: {one_line(exc)}); "
                             f"expected a readable image file ({SKIP_HINT})")


def image_problem(path: str) -> Optional[str]:
    """None if ``path`` exists and PIL recognises it (header check, see the module
    docstring); otherwise why not: 'missing' or the decoder's complaint."""
    try:
        if not os.path.isfile(path):
            return "missing"
        with Image.open(path) as img:
            img.verify()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {one_line(exc)}"


def run_logger_for(args) -> logging.Logger:
    """The run's logger, set up by ``semilearn train`` before the datasets are built."""
    return get_run_logger(training_logger_name(args))


def log_info(args, message: str) -> None:
    logger = run_logger_for(args)
    if logger.handlers:
        logger.info(message)
    else:
        print(message, file=sys.stderr)


def check_images(paths: Sequence[str], sources: Sequence[str], skip_bad: bool, layout: str,
                 args=None, what: str = "images") -> np.ndarray:
    """Indices of the usable entries of ``paths``.

    ``sources[i]`` says where path i was listed ("'training.csv' line 12") or
    is empty for files found by walking a folder.  Without ``skip_bad`` the
    first missing or unreadable file is a UserError naming it; with it, such
    files are dropped, counted and the count logged.
    """
    paths = list(paths)
    if not paths:
        return np.zeros(0, dtype=np.int64)
    workers = min(16, max(4, (os.cpu_count() or 1) * 2))
    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(image_problem, paths, chunksize=256))
    bad = [i for i, p in enumerate(problems) if p is not None]
    if bad and not skip_bad:
        i = bad[0]
        where = f" (listed in {sources[i]})" if sources and sources[i] else ""
        more = f"; {len(bad) - 1} more bad {what}" if len(bad) > 1 else ""
        if problems[i] == "missing":
            raise ImageReadError(f"image '{paths[i]}'{where} does not exist{more}; expected {layout} ({SKIP_HINT})")
        raise ImageReadError(f"image '{paths[i]}'{where} cannot be read ({problems[i]}){more}; expected a "
                             f"readable image file ({SKIP_HINT})")
    if bad:
        missing = sum(problems[i] == "missing" for i in bad)
        first = paths[bad[0]]
        log_info(args, f"--skip_bad_images: skipped {len(bad)} of {len(paths)} {what} ({missing} missing, "
                       f"{len(bad) - missing} unreadable; first: '{first}')")
    keep = np.ones(len(paths), dtype=bool)
    keep[bad] = False
    return np.flatnonzero(keep)


class FileDataset(BasicDataset):
    """``BasicDataset`` over image paths, decoded in ``__sample__`` (grey -> RGB).

    With ``skip_bad`` an image that fails to decode is replaced by the next
    readable one (and a warning names it) instead of raising ImageReadError."""

    def __init__(self, *args, skip_bad: bool = False, logger_name: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_bad = bool(skip_bad)
        self.logger_name = logger_name

    def __sample__(self, idx):
        path, target = super().__sample__(idx)
        try:
            return load_image(path), target
        except ImageReadError:
            if not self.skip_bad:
                raise
        self._warn(path)
        n = len(self.data)
        for step in range(1, min(n, MAX_SUBSTITUTES + 1)):
            other, other_target = super().__sample__((idx + step) % n)
            try:
                return load_image(other), other_target
            except ImageReadError:
                self._warn(other)
        raise ImageReadError(f"image '{path}' cannot be decoded, nor can the {min(n - 1, MAX_SUBSTITUTES)} "
                             f"images after it; expected readable image files")

    def _warn(self, path: str) -> None:
        warned = self.__dict__.setdefault("_warned", set())
        if path in warned:
            return
        warned.add(path)
        message = f"--skip_bad_images: image '{path}' cannot be decoded; using the next readable image instead"
        logger = logging.getLogger(self.logger_name) if self.logger_name else None
        if logger is not None and logger.handlers:
            logger.warning(message)
        else:
            print(message, file=sys.stderr)


def file_dataset_class(args):
    """:class:`FileDataset`'s constructor configured from ``--skip_bad_images`` and the run's logger."""
    return partial(FileDataset, skip_bad=bool(args.skip_bad_images),
                   logger_name=run_logger_for(args).name)


def list_image_tree(root: str) -> List[Tuple[str, List[str]]]:
    """``[(class_folder, sorted image paths)]`` for the class folders of ``root`` (sorted;
    hidden folders ignored; images found recursively, by extension)."""
    out = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(folder):
            continue
        files = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_image_file(f))
        out.append((name, files))
    return out
