"""The ``--leaf_*`` flags every LEAF algorithm adds, and the network they configure."""
from __future__ import annotations

import re

from semilearn.algorithms.utils import SSL_Argument, str2bool

from ..errors import UserError
from ..layers import LeafConfig, LeafNet


class LeafWrapError(UserError):
    """A host that LEAF cannot be wrapped around."""


LEAF_ARGUMENTS = [
    SSL_Argument("--leaf_lambda_amb", float, 1.0, "weight of the ambiguous pseudo-label loss (category level)"),
    SSL_Argument("--leaf_lambda_c", float, 0.1, "weight of the two-view consistency (NT-Xent) term"),
    SSL_Argument("--leaf_lambda_b", float, 1.0, "weight of the gates' balance term (its size is --leaf_balance_coef)"),
    SSL_Argument("--leaf_amb_on", str, "rejected",
                 "where the ambiguous loss and the two-view term apply: rejected (by the host's mask) | all | "
                 "unconfident (averaged-view confidence below --leaf_confidence)"),
    SSL_Argument("--leaf_confidence", float, 0.95, "threshold of --leaf_amb_on unconfident"),
    SSL_Argument("--leaf_host_view", str, "mean",
                 "what the host pseudo-labels and masks with: mean (of the two weak views) | own (its weak view)"),
    SSL_Argument("--leaf_semantic", str2bool, True, "semantic level (expert gating after pooling)"),
    SSL_Argument("--leaf_instance", str2bool, True, "instance level (expert gating after normalisation)"),
    SSL_Argument("--leaf_category", str2bool, True, "category level (ambiguous pseudo-labels)"),
    SSL_Argument("--leaf_instance_on", str, "feat", "instance level on the feature (feat) or the logits (logits)"),
    SSL_Argument("--leaf_num_experts", int, 8, "experts per level"),
    SSL_Argument("--leaf_top_k", int, 2, "experts each sample is routed to"),
    SSL_Argument("--leaf_noisy_gating", str2bool, True, "noisy top-k gating (noise in training only)"),
    SSL_Argument("--leaf_balance_coef", float, 0.01, "coefficient of cv^2(importance) + cv^2(load)"),
    SSL_Argument("--leaf_feature_scale", float, 16.0, "scale of the normalised feature before the classifier"),
    SSL_Argument("--leaf_learn_scale", str2bool, False, "learn that scale (NormFace), starting at --leaf_feature_scale"),
    SSL_Argument("--leaf_normalize", str2bool, True,
                 "classify the unit-norm feature times the scale (false: the feature at the backbone's own norm, "
                 "no scale, so no --leaf_learn_scale)"),
    SSL_Argument("--leaf_expert_init", str, "uniform",
                 "experts: uniform (nn.Linear init) | zero (second layers zero: each level starts as the identity) | "
                 "rezero (uniform experts behind a learned gain that starts at 0)"),
    SSL_Argument("--leaf_faithful", str2bool, False, "the released code's modules and loss (reproduction only)"),
    SSL_Argument("--leaf_tau", float, 0.9, "cumulative probability that closes the positive set"),
    SSL_Argument("--leaf_max_pos", int, 3, "largest positive set"),
    SSL_Argument("--leaf_min_pos", int, 1, "smallest positive set (1: the method's rule unchanged)"),
    SSL_Argument("--leaf_weight_lambda", float, 50.0, "lambda of the concave per-sample weight"),
    SSL_Argument("--leaf_temperature", float, 0.07, "NT-Xent temperature of the two-view term"),
    SSL_Argument("--leaf_view2_grad", str2bool, True, "train through the second weak view (false: no-grad forward)"),
]


def _as_user_error(exc: Exception) -> UserError:
    """A layer's ``ValueError`` / ``TypeError`` ("leaf: top_k must be ...") as the one-line
    ``UserError`` the command line reports with exit code 2, naming the flag (``--leaf_top_k``)."""
    return UserError(re.sub(r"^leaf: (\w+)", r"--leaf_\1", str(exc).strip().splitlines()[0]))


def leaf_config(args) -> LeafConfig:
    """The network hook's config from ``--leaf_*`` flags; a bad value is a ``UserError``."""
    try:
        return LeafConfig(num_experts=args.leaf_num_experts, top_k=args.leaf_top_k,
                          noisy_gating=args.leaf_noisy_gating, balance_coef=args.leaf_balance_coef,
                          semantic=args.leaf_semantic, instance=args.leaf_instance,
                          instance_on=args.leaf_instance_on, feature_scale=args.leaf_feature_scale,
                          learn_scale=args.leaf_learn_scale, normalize=args.leaf_normalize,
                          expert_init=args.leaf_expert_init,
                          faithful=args.leaf_faithful)
    except (ValueError, TypeError) as exc:
        raise _as_user_error(exc) from exc


def leaf_net(backbone, num_classes: int, config: LeafConfig) -> LeafNet:
    """``LeafNet`` around the ``--net`` backbone; a backbone LEAF cannot wrap is a ``LeafWrapError``."""
    try:
        return LeafNet(backbone, num_classes, config)
    except (ValueError, TypeError) as exc:
        raise LeafWrapError(f"--net: {str(exc).strip().splitlines()[0]}") from exc


def fill_leaf_defaults(args, arguments) -> None:
    """Give ``args`` every algorithm flag it lacks (args built by USB's own get_config)."""
    for arg in arguments:
        dest = arg.name.lstrip("-").replace("-", "_")
        if not hasattr(args, dest):
            setattr(args, dest, arg.default)
