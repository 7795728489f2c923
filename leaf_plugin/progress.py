"""A progress bar with ETA and the current losses, as a semilearn hook."""
from __future__ import annotations

import sys

from semilearn.core.hooks import Hook
from tqdm.auto import tqdm

SHOWN = ("sup_loss", "unsup_loss", "leaf_amb_loss", "leaf_con_loss", "total_loss", "util_ratio")


class ProgressBarHook(Hook):
    """tqdm bar over the training iterations (rank 0 only)."""

    def before_run(self, algorithm):
        self.bar = None
        if algorithm.distributed and algorithm.rank != 0:
            return
        self.bar = tqdm(total=algorithm.num_train_iter, initial=algorithm.it, desc=algorithm.args.algorithm,
                        unit="it", dynamic_ncols=True, file=sys.stderr, mininterval=1.0)

    def after_train_step(self, algorithm):
        if self.bar is None:
            return
        shown = {k.split("/")[-1]: v for k, v in algorithm.log_dict.items() if k.split("/")[-1] in SHOWN}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def after_run(self, algorithm):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
