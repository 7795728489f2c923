"""Building an algorithm from ``semilearn train`` arguments, as ``train`` does: the one
path used by ``train``, ``eval``, ``report``, the tests and the step benchmark."""
from __future__ import annotations

import logging
from argparse import Namespace
from typing import Optional, Sequence

from .algorithms import algorithm_class
from .arguments import parse_train_args
from .nets.builders import net_builder_for


def build_algorithm(args: Namespace, logger: Optional[logging.Logger] = None, tb_log=None):
    """``args.algorithm``'s class with the runtime in front, built on ``args.net``
    (datasets, model, EMA model, optimizer and hooks; nothing trained yet).  Without
    ``args.distributed`` (set by ``semilearn train``'s launcher) it runs as one process."""
    if not hasattr(args, "distributed"):
        args.distributed = False
    return algorithm_class(args.algorithm)(args, net_builder_for(args), tb_log,
                                           logger or logging.getLogger("leaf_plugin"))


def algorithm_from_argv(argv: Sequence[str], logger: Optional[logging.Logger] = None, **parse_kwargs):
    """:func:`build_algorithm` of ``semilearn train ARGV``'s arguments."""
    return build_algorithm(parse_train_args([str(a) for a in argv], **parse_kwargs), logger)
