"""Pseudo-label quantity and quality, for any algorithm (SoftMatch's and FreeMatch's picture).

Per log window: how much of the unlabeled batch the host's mask accepts (``pl_mask_ratio``,
the mean mask weight), how often the accepted pseudo-labels are right (``pl_accuracy``,
weighted by the mask), how often all of them are (``pl_all_accuracy``), and for LEAF how
often the ambiguous positive set of a rejected sample (mask < 0.5) holds its true class
(``leaf_pos_hit``) and that set's mean size (``leaf_pos_size_rejected``).  The true labels
are the unlabeled set's own (benchmark datasets keep them); without them nothing is logged.
Sums stay on the device and come to the CPU once per window.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from semilearn.core.hooks import Hook

from ..history import is_eval_iteration

FIELDS = ("weight", "accepted", "accepted_correct", "all_correct", "rejected", "rejected_hit", "rejected_pos")


def unlabeled_targets(dataset, device: torch.device) -> Optional[torch.Tensor]:
    """The unlabeled set's true labels as a tensor, or None when it has none."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    targets = np.asarray(targets)
    if targets.ndim != 1 or targets.size == 0 or not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0:
        return None
    return torch.as_tensor(targets, dtype=torch.long, device=device)


class PseudoLabelStats:
    """Running sums over one log window."""

    def __init__(self, targets: torch.Tensor):
        self.targets = targets
        self.sums = torch.zeros(len(FIELDS), dtype=torch.float64, device=targets.device)

    @torch.no_grad()
    def add(self, idx: torch.Tensor, mask: torch.Tensor, pseudo: torch.Tensor,
            positive: Optional[torch.Tensor] = None) -> None:
        """One step: ``idx`` [B] the unlabeled indices, ``mask`` [B] the host's mask (hard or
        soft), ``pseudo`` [B] or [B, C] its pseudo-labels, ``positive`` [B, C] LEAF's sets."""
        y = self.targets[idx.long()]
        mask = mask.detach().reshape(-1).double()
        label = pseudo.argmax(-1) if pseudo.dim() == 2 else pseudo
        right = (label.reshape(-1).long() == y).double()
        rejected = (mask < 0.5).double()
        hit = pos = torch.zeros_like(mask)
        if positive is not None:
            hit = positive.gather(1, y.unsqueeze(1)).squeeze(1).double()
            pos = positive.sum(1).double()
        step = torch.stack([torch.full_like(mask, 1.0).sum(), mask.sum(), (mask * right).sum(), right.sum(),
                            rejected.sum(), (rejected * hit).sum(), (rejected * pos).sum()])
        if positive is None:
            step[5:] = float("nan")
        self.sums += step

    def flush(self) -> dict:
        """The window's ratios (``train/...``), then a new window."""
        s = dict(zip(FIELDS, self.sums.tolist()))
        self.sums.zero_()
        if s["weight"] == 0:
            return {}

        def ratio(num: float, den: float) -> float:
            return num / den if den > 0 else float("nan")

        out = {"train/pl_mask_ratio": s["accepted"] / s["weight"],
               "train/pl_accuracy": ratio(s["accepted_correct"], s["accepted"]),
               "train/pl_all_accuracy": s["all_correct"] / s["weight"]}
        if s["rejected_hit"] == s["rejected_hit"]:  # not nan: LEAF's positive sets were seen
            out["train/leaf_pos_hit"] = ratio(s["rejected_hit"], s["rejected"])
            out["train/leaf_pos_size_rejected"] = ratio(s["rejected_pos"], s["rejected"])
        return out


class PseudoLabelDiagnosticsHook(Hook):
    """Collects what the last step's host returned from its ``masking`` and ``gen_ulb_targets``
    hooks (captured by the runtime), and logs the window's ratios at log and eval iterations."""

    def before_run(self, algorithm):
        dset = (algorithm.dataset_dict or {}).get("train_ulb")
        targets = unlabeled_targets(dset, algorithm.device) if dset is not None else None
        self.stats = PseudoLabelStats(targets) if targets is not None else None

    def after_train_step(self, algorithm):
        captured = algorithm.step_capture
        if self.stats is None:
            return
        if all(k in captured for k in ("idx_ulb", "masking", "gen_ulb_targets")):
            mask, pseudo = captured["masking"], captured["gen_ulb_targets"]
            if torch.is_tensor(mask) and torch.is_tensor(pseudo) and mask.numel() == captured["idx_ulb"].numel():
                self.stats.add(captured["idx_ulb"], mask, pseudo, captured.get("positive"))
        if self.every_n_iters(algorithm, algorithm.num_log_iter) or is_eval_iteration(algorithm):
            algorithm.log_dict.update(self.stats.flush())
