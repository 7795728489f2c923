"""The run's logger: a log file in the run folder and the console through tqdm."""
from __future__ import annotations

import logging
import os
from logging.handlers import MemoryHandler

from ..progress import TqdmHandler

FORMAT = "[%(asctime)s %(levelname)s] %(message)s"


def run_logger(name: str, save_path: str, level: str = "INFO", deferred: bool = False) -> logging.Logger:
    """Console + ``save_path/log.txt``.  With ``deferred`` the file is not created
    yet: lines are kept in memory until :func:`open_log_file` (so a run refused
    during set-up writes nothing)."""
    logger = logging.getLogger(f"leaf_plugin.run.{name}")
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
