"""LEAF algorithms, registered in semilearn's own registry on import (``@register_algorithm``),
and the network an algorithm trains, built without its datasets (for ``predict`` and ``export``)."""
from argparse import Namespace
from typing import Dict, Optional

import torch.nn as nn

from semilearn.algorithms.fixmatch import FixMatch
from semilearn.algorithms.flexmatch import FlexMatch
from semilearn.algorithms.freematch import FreeMatch
from semilearn.core.utils import ALGORITHMS

from ..errors import UserError
from ..layers import LeafConfig
from ..nets.builders import net_builder_for
from ..runtime import with_runtime
from .adacm import AdaCM
from .leaf_args import LEAF_ARGUMENTS, LeafWrapError, complete_algorithm_args, leaf_net, leaf_options
from .wrap import LeafAlgorithm, wrap

# Every host learns the head's scale: at the fixed 16 the wrapped model ends more confident than
# its host and more wrong pseudo-labels pass the host's threshold; the scale it learns settles
# near 4. FlexMatch and FreeMatch since the FER2013 screens (benchmarks/results/why_a_host_gains.md,
# "The default chosen"); FixMatch since the FERPlus screens, learned minus fixed +0.59 [+0.10, +1.09]
# over 5 seeds (benchmarks/results/ferplus.md, "The per-host defaults on FERPlus: screens").
LEARNED_SCALE = {"leaf_learn_scale": True}

LEAF_ALGORITHMS: Dict[str, type] = {}


def register_algorithm(name: str):
    """Decorator (as semilearn's own ``@ALGORITHMS.register``): put an algorithm class into
    semilearn's ``ALGORITHMS`` under ``name`` (once); a LEAF one also into ``LEAF_ALGORITHMS``."""

    def add(cls: type) -> type:
        if name not in ALGORITHMS:
            ALGORITHMS.register(name)(cls)
        if issubclass(cls, LeafAlgorithm):
            LEAF_ALGORITHMS[name] = cls
        return cls

    return add


register_algorithm("leaf_fixmatch")(wrap(FixMatch, "LeafFixMatch", **LEARNED_SCALE))
register_algorithm("leaf_flexmatch")(wrap(FlexMatch, "LeafFlexMatch", **LEARNED_SCALE))
register_algorithm("leaf_freematch")(wrap(FreeMatch, "LeafFreeMatch", **LEARNED_SCALE))
# the released recipe: Ada-CM thresholds, ambiguous loss on every sample, l_x 0.5 / l_u 1 / l_c 0.1
register_algorithm("leaf")(wrap(AdaCM, "Leaf", leaf_amb_on="all", leaf_lambda_amb=1.0, leaf_lambda_c=0.1))


def algorithm_class(name: str) -> type:
    """The registered class for ``name``, with the CPU/CUDA runtime in front."""
    if name not in ALGORITHMS:
        raise UserError(f"unknown algorithm '{name}'; expected one of: {', '.join(sorted(ALGORITHMS.keys()))}")
    return with_runtime(ALGORITHMS[name])


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


__all__ = ["is_leaf_algorithm", "network_for", "wrap", "LeafAlgorithm", "LeafWrapError", "LEAF_ARGUMENTS", "LEAF_ALGORITHMS", "AdaCM",
           "algorithm_class", "register_algorithm"]
