"""The network an algorithm trains, built without its datasets (for predict and export)."""
from __future__ import annotations

from argparse import Namespace
from typing import Optional

import torch.nn as nn
from semilearn.core.utils import ALGORITHMS

from ..layers import LeafConfig
from ..nets.builders import net_builder_for
from .leaf_args import complete_algorithm_args, leaf_net, leaf_options
from .wrap import LeafAlgorithm


def is_leaf_algorithm(name: str) -> bool:
    cls = ALGORITHMS[name] if name in ALGORITHMS else None
    return isinstance(cls, type) and issubclass(cls, LeafAlgorithm)


def network_for(args: Namespace, leaf_cfg: Optional[LeafConfig] = None) -> nn.Module:
    """What ``algorithm_class(args.algorithm)``'s ``set_model`` builds: the net builder's
    backbone for ``args.num_classes``, inside :class:`~leaf_plugin.layers.LeafNet` for a LEAF algorithm (with
    ``leaf_cfg``, or the configuration its ``--leaf_*`` flags give)."""
    backbone = net_builder_for(args)(num_classes=args.num_classes)
    if leaf_cfg is None and not is_leaf_algorithm(args.algorithm):
        return backbone
    if leaf_cfg is None:
        complete_algorithm_args(args, ALGORITHMS[args.algorithm].get_argument())
        leaf_cfg = leaf_options(LeafConfig, args)
    return leaf_net(backbone, args.num_classes, leaf_cfg)
