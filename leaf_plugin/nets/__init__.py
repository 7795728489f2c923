"""Backbones the plug-in registers as semilearn nets."""
import semilearn.nets as _semilearn_nets

from .resnet import ResNet18, resnet18
from .small_cnn import SmallCNN, leaf_cnn4

NETS = {"leaf_cnn4": leaf_cnn4, "resnet18": resnet18}


def register_nets() -> None:
    """Make the plug-in's builders visible to ``semilearn.core.utils.get_net_builder``."""
    for name, builder in NETS.items():
        setattr(_semilearn_nets, name, builder)


register_nets()

__all__ = ["SmallCNN", "leaf_cnn4", "ResNet18", "resnet18", "NETS", "register_nets"]
