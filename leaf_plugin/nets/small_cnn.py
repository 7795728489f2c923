"""A small CPU-friendly backbone that follows semilearn's net contract.

Four stages of (3x3 conv-BN-ReLU) x 2 + 2x2 max-pool, widths 16-32-64-128,
global average pooling, a linear head: about 0.29M parameters.  ``forward``
returns ``{'logits', 'feat'}`` and honours ``only_feat`` / ``only_fc`` like
``semilearn.nets.wrn``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .contract import SemilearnNet, register_net


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(SemilearnNet):
    """Four-stage CNN; ``num_features`` is the pooled feature size."""

    STEM, BLOCKS = r"^{prefix}stages\.0", r"^{prefix}stages\.(\d+)"

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 128), in_chans: int = 3):
        super().__init__()
        chans = [in_chans, *widths]
        self.stages = nn.Sequential(*[_stage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = chans[-1]
        self.classifier = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.stages(x)), 1)


@register_net("leaf_cnn4")
def leaf_cnn4(num_classes: int, pretrained: bool = False, pretrained_path: str = None, **kwargs) -> SmallCNN:
    """semilearn-style builder of :class:`SmallCNN` (``--net leaf_cnn4``).

    ``semilearn train`` loads ``--pretrain_path`` through
    :func:`leaf_plugin.nets.builders.net_builder_for` (which never passes
    ``pretrained_path`` here); one given directly (USB's own ``train.py``) is
    loaded strictly, the classifier head left as initialised."""
    model = SmallCNN(num_classes, **kwargs)
    if pretrained_path:
        from .pretrained import load_pretrained_backbone
        load_pretrained_backbone(model, pretrained_path)
    return model
