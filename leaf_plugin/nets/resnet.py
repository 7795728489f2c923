"""torchvision's ResNet-18 under semilearn's net contract (``--net resnet18``).

The module keeps torchvision's parameter names (``conv1``, ``bn1``,
``layer1``..``layer4``, ``fc``), so a torchvision ResNet-18 state dict, or the
face-recognition (MS-Celeb-1M) ResNet-18 that LEAF starts from, loads with
``--pretrain_path`` as it is; ``fc`` is the classifier head and is always
re-initialised for the run's classes.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet

from .contract import SemilearnNet, register_net


class ResNet18(SemilearnNet, ResNet):
    """ResNet-18; ``forward(x, only_fc, only_feat)`` -> ``{'logits', 'feat'}`` (feat: 512-d pooled)."""

    STEM = r"^{prefix}(conv1|bn1)\."
    BLOCKS, BLOCKS_FINE = r"^{prefix}layer(\d+)", r"^{prefix}layer(\d+)\.(\d+)"

    def __init__(self, num_classes: int):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.num_features = self.fc.in_features  # 512

    @property
    def classifier(self) -> nn.Linear:
        """semilearn's name for the head (the same module as ``fc``)."""
        return self.fc

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


@register_net("resnet18")
def resnet18(num_classes: int, pretrained: bool = False, pretrained_path: str = None, **kwargs) -> ResNet18:
    """semilearn-style builder (``--net resnet18``).  ``semilearn train`` loads
    ``--pretrain_path`` through :func:`leaf_plugin.nets.builders.net_builder_for`;
    a ``pretrained_path`` given here directly (USB's own ``train.py``) is loaded strictly."""
    model = ResNet18(num_classes)
    if pretrained_path:
        from .pretrained import load_pretrained_backbone
        load_pretrained_backbone(model, pretrained_path)
    return model
