"""The run's logger: a log file in the run folder and the console through tqdm.

It sits at the bottom of the package: datasets log through the run's logger too, and
find it by :func:`run_logger_name` rather than rebuilding its name."""
from __future__ import annotations

import logging
import os
import sys
from logging.handlers import MemoryHandler

from tqdm.auto import tqdm

FORMAT = "[%(asctime)s %(levelname)s] %(message)s"
PREFIX = "leaf_plugin.run."


class TqdmHandler(logging.StreamHandler):
    """Console log lines written through ``tqdm.write`` so they do not break the bar."""

    def emit(self, record):
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def training_logger_name(args) -> str:
    """The logger name of a training process: its run and its rank."""
    return f"{args.save_name}.{args.rank}"


def get_run_logger(name: str) -> logging.Logger:
    """The logger :func:`run_logger` set up (or will set up) under ``name``."""
    return logging.getLogger(PREFIX + name)


def run_logger(name: str, save_path: str, level: str = "INFO", deferred: bool = False) -> logging.Logger:
    """Console + ``save_path/log.txt``.  With ``deferred`` the file is not created
    yet: lines are kept in memory until :func:`open_log_file` (so a run refused
    during set-up writes nothing)."""
    logger = get_run_logger(name)
    logger.setLevel(getattr(logging, level))
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    console = TqdmHandler()
    console.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(console)
    if deferred:
        logger.addHandler(MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1))
    elif save_path is not None:
        open_log_file(logger, save_path)
    return logger


def open_log_file(logger: logging.Logger, save_path: str) -> None:
    """Start ``save_path/log.txt``, with any lines kept in memory so far."""
    os.makedirs(save_path, exist_ok=True)
    handler = logging.FileHandler(os.path.join(save_path, "log.txt"))
    handler.setFormatter(logging.Formatter(FORMAT))
    for buffered in [h for h in logger.handlers if isinstance(h, MemoryHandler)]:
        buffered.setTarget(handler)
        buffered.flush()
        logger.removeHandler(buffered)
        buffered.close()
    logger.addHandler(handler)


def close_logger(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
