"""``semilearn train`` arguments: the flag table, a config file and each algorithm's
``get_argument()`` flags merged with USB's precedence (built-in defaults < config file
(``--c``) < command line), then checked.  Unknown config keys and values of the wrong
type are errors that name the key.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from semilearn.algorithms.utils import str2bool

from ..errors import UserError
from ..flags import base_parser, flag_bool
from .coercion import coerce_config_value
from .yaml_file import load_yaml


def algorithm_arguments(algorithm: str) -> list:
    """The ``SSL_Argument`` list of a registered algorithm (UserError if unknown)."""
    from ..algorithms import algorithm_class

    return list(algorithm_class(algorithm).get_argument())


def parse_train_args(argv: Optional[Sequence[str]] = None, prog: str = "semilearn train",
                     trusted: Optional[dict] = None) -> argparse.Namespace:
    """Parse ``semilearn train`` arguments with USB's precedence fixed: CLI > config > defaults.

    ``trusted`` are config values from a checkpoint the command wrote (keys it
    does not know are dropped rather than refused)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre_args, _ = base_parser(prog, add_help=False).parse_known_args(argv)
    config = load_yaml(pre_args.c) if pre_args.c else {}
    config.update(trusted or {})
    given_alg = next((a for a in argv if a.startswith(("--algorithm", "-alg"))), None)
    algorithm = pre_args.algorithm if given_alg else config.get("algorithm", pre_args.algorithm)

    parser = base_parser(prog)
    group = parser.add_argument_group(f"{algorithm} arguments")
    for arg in algorithm_arguments(algorithm):
        kind = flag_bool if arg.type in (str2bool, bool) else arg.type
        group.add_argument(arg.name, type=kind, default=arg.default, help=arg.help)
    actions = {a.dest: a for a in parser._actions}
    if trusted:
        config = {k: v for k, v in config.items() if k in actions}
    if config:
        unknown = [k for k in config if k not in actions]
        if unknown:
            raise UserError(f"config file '{pre_args.c}': unknown key '{unknown[0]}'; expected one of the "
                            f"flags of 'semilearn train --algorithm {algorithm} --help'")
        parser.set_defaults(**{k: coerce_config_value(k, v, actions[k], pre_args.c) for k, v in config.items()})
    args = parser.parse_args(argv)
    args.algorithm = algorithm
    return finalize_args(args)


def require_positive(args: argparse.Namespace, names: Sequence[str], kind: str = "integer") -> None:
    """UserError naming the first of ``names`` whose value is not above zero."""
    for name in names:
        if getattr(args, name) <= 0:
            raise UserError(f"--{name} is {getattr(args, name)}; expected a positive {kind}")


def finalize_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what depends on other values, and reject values no run can use."""
    from ..data import get_dataset_spec

    spec = get_dataset_spec(args.dataset)
    if spec is not None:
        num_classes = spec.classes_for(args)
        if args.num_classes not in (None, num_classes):
            raise UserError(f"--num_classes {args.num_classes} does not match dataset '{args.dataset}', "
                            f"which has {num_classes} classes")
        args.num_classes = num_classes
        args.num_labels = spec.labels_for(args) if args.num_labels is None else args.num_labels
        args.img_size = args.img_size or spec.img_size
    else:
        args.num_classes = args.num_classes or 10
        args.num_labels = 400 if args.num_labels is None else args.num_labels
        args.img_size = args.img_size or 32
    if args.num_labels == -1 and spec is None:
        raise UserError(f"--num_labels -1 (every image labeled) works with the plug-in's datasets, not "
                        f"semilearn's '{args.dataset}'; expected a positive number")
    if args.num_labels == 0 or args.num_labels < -1:
        raise UserError(f"--num_labels is {args.num_labels}; expected a positive integer (or -1: all labeled)")
    require_positive(args, ("batch_size", "uratio", "num_train_iter", "epoch", "eval_batch_size",
                            "num_eval_iter", "num_log_iter"))
    require_positive(args, ("lr",), "number")
    if args.num_train_iter % args.epoch:
        raise UserError(f"--num_train_iter {args.num_train_iter} is not divisible by --epoch {args.epoch}; "
                        f"expected a multiple of it")
    if args.save_name is None:
        args.save_name = f"{args.algorithm}_{args.dataset}_{args.num_labels}_{args.seed}"
    return args
