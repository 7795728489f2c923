"""``semilearn train``: parse the arguments, then run the training (:mod:`leaf_plugin.training`)."""
from __future__ import annotations

from typing import List


def run(argv: List[str]) -> int:
    from ..arguments import parse_train_args
    from ..training import run_train

    run_train(parse_train_args(argv))
    return 0
