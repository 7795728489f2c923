"""Ada-CM, the host of LEAF's released recipe (the standalone ``leaf`` algorithm).

FixMatch's step with per-class adaptive thresholds (Ada-CM, CVPR 2022): every
class starts at 0.8; after each epoch the threshold of class c becomes
``max(0.8, 0.97 * m_c / (1 + e^-epoch))`` where ``m_c`` is the EMA model's mean
confidence on the correctly classified labeled images of class c.  The
supervised term is weighted by ``--sup_loss_ratio`` (0.5 in the recipe) and the
host's hard-label term by ``--hard_loss_ratio`` (0: in the recipe the
unlabeled signal is LEAF's ambiguous loss).
"""
from __future__ import annotations

import math

import torch
from semilearn.algorithms.fixmatch import FixMatch
from semilearn.algorithms.hooks import PseudoLabelingHook
from semilearn.algorithms.hooks.masking import MaskingHook
from semilearn.algorithms.utils import SSL_Argument
from torch.utils.data import DataLoader


class ScaledLoss(torch.nn.Module):
    """``weight * loss(...)`` for one of semilearn's criterion modules."""

    def __init__(self, loss: torch.nn.Module, weight: float):
        super().__init__()
        self.loss, self.weight = loss, float(weight)

    def forward(self, *args, **kwargs):
        return self.weight * self.loss(*args, **kwargs)


class AdaCMThresholdingHook(MaskingHook):
    """Per-class confidence thresholds, refreshed from the EMA model each epoch."""

    def __init__(self, num_classes: int, start: float = 0.8, floor: float = 0.8, scale: float = 0.97):
        super().__init__()
        self.class_thresholds = torch.full((num_classes,), float(start))
        self.floor, self.scale = floor, scale

    @torch.no_grad()
    def masking(self, algorithm, logits_x_ulb, softmax_x_ulb=True, *args, **kwargs):
        probs = algorithm.compute_prob(logits_x_ulb.detach()) if softmax_x_ulb else logits_x_ulb.detach()
        conf, pred = probs.max(dim=-1)
        thresholds = self.class_thresholds.to(conf.device)
        return (conf >= thresholds[pred]).to(conf.dtype)

    @torch.no_grad()
    def after_train_epoch(self, algorithm):
        """Refresh the thresholds from the EMA model on the labeled set."""
        dataset = algorithm.dataset_dict["train_lb"]
        loader = DataLoader(dataset, batch_size=algorithm.args.eval_batch_size, shuffle=False, num_workers=0)
        model = algorithm.ema_model
        was_training = model.training
        model.eval()
        num_classes = self.class_thresholds.numel()
        total = torch.zeros(num_classes, dtype=torch.float64)
        count = torch.zeros(num_classes, dtype=torch.float64)
        for batch in loader:
            x = batch["x_lb"].to(algorithm.device)
            y = batch["y_lb"].to(algorithm.device)
            probs = torch.softmax(model(x)["logits"].float(), -1)
            conf, pred = probs.max(-1)
            right = pred == y
            total.index_add_(0, y[right].cpu(), conf[right].double().cpu())
            count.index_add_(0, y[right].cpu(), torch.ones(int(right.sum()), dtype=torch.float64))
        model.train(was_training)
        epoch = algorithm.epoch + 1
        mean_conf = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))
        new = (self.scale * mean_conf / (1 + math.exp(-epoch))).clamp_min(self.floor).float()
        self.class_thresholds = new


class AdaCM(FixMatch):
    """FixMatch with Ada-CM's per-class adaptive thresholds."""

    def __init__(self, args, net_builder, tb_log=None, logger=None):
        super().__init__(args, net_builder, tb_log, logger)
        self.ce_loss = ScaledLoss(self.ce_loss, args.sup_loss_ratio)
        self.consistency_loss = ScaledLoss(self.consistency_loss, args.hard_loss_ratio)

    def set_hooks(self):
        self.register_hook(PseudoLabelingHook(), "PseudoLabelingHook")
        self.register_hook(AdaCMThresholdingHook(self.num_classes), "MaskingHook")
        super(FixMatch, self).set_hooks()

    @staticmethod
    def get_argument():
        return FixMatch.get_argument() + [
            SSL_Argument("--sup_loss_ratio", float, 0.5, "weight of the labeled cross-entropy"),
            SSL_Argument("--hard_loss_ratio", float, 0.0, "weight of FixMatch's hard-label term"),
        ]
