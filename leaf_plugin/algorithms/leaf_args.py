"""The ``--leaf_*`` flags every LEAF algorithm adds, read once into LEAF's options, and the network they configure."""
from __future__ import annotations

import re
from dataclasses import fields

from semilearn.algorithms.utils import SSL_Argument, str2bool

from ..errors import UserError
from ..flags import OneOf, complete_args, read_options
from ..layers import LeafConfig, LeafLoss, LeafNet


class LeafWrapError(UserError):
    """A host that LEAF cannot be wrapped around."""


def leaf_flags(options: type) -> list:
    """One ``SSL_Argument`` per field of ``options``: ``--leaf_<field>``, its default, type and help."""
    out = []
    for f in fields(options):
        choices = f.metadata.get("choices")
        kind = OneOf(choices) if choices else str2bool if type(f.default) is bool else type(f.default)
        out.append(SSL_Argument(f"--leaf_{f.name}", kind, f.default, f.metadata["help"]))
    return out


# the loss side first, then the network hook (the order of `semilearn train --help`)
LEAF_ARGUMENTS = leaf_flags(LeafLoss) + leaf_flags(LeafConfig)


def _as_user_error(exc: Exception) -> UserError:
    """A layer's ``ValueError`` / ``TypeError`` ("leaf: top_k must be ...") as the one-line
    ``UserError`` the command line reports with exit code 2, naming the flag (``--leaf_top_k``)."""
    return UserError(re.sub(r"^leaf: (\w+)", r"--leaf_\1", str(exc).strip().splitlines()[0]))


def leaf_options(options: type, args):
    """``LeafConfig`` or ``LeafLoss`` from the ``--leaf_*`` flags; a bad value is a ``UserError``."""
    try:
        return read_options(options, args, prefix="leaf_")
    except (ValueError, TypeError) as exc:
        raise _as_user_error(exc) from exc


def leaf_net(backbone, num_classes: int, config: LeafConfig) -> LeafNet:
    """``LeafNet`` around the ``--net`` backbone; a backbone LEAF cannot wrap is a ``LeafWrapError``."""
    try:
        return LeafNet(backbone, num_classes, config)
    except (ValueError, TypeError) as exc:
        raise LeafWrapError(f"--net: {str(exc).strip().splitlines()[0]}") from exc


def complete_algorithm_args(args, arguments) -> None:
    """Give ``args`` every flag of the algorithm's ``get_argument()`` it lacks (args built by USB's own get_config)."""
    complete_args(args, {a.name.lstrip("-").replace("-", "_"): a.default for a in arguments})

