"""Backbones the plug-in registers as semilearn nets (``@register_net``, on import)."""
from .contract import NETS, SemilearnNet, register_net
from .resnet import ResNet18, resnet18
from .small_cnn import SmallCNN, leaf_cnn4

__all__ = ["NETS", "SemilearnNet", "register_net", "SmallCNN", "leaf_cnn4", "ResNet18", "resnet18"]
