"""``semilearn train`` arguments and the algorithm they build, as ``train`` builds it.

The flag table (:mod:`leaf_plugin.flags`), a config file and each algorithm's ``get_argument()``
flags merged with USB's precedence (built-in defaults < config file (``--c``) < command line),
then checked; unknown config keys and values of the wrong type are errors that name the key.
:func:`build_algorithm` is the one path from arguments to an algorithm, used by ``train``,
``eval``, ``report``, the tests and the step benchmark.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from semilearn.algorithms.utils import str2bool

from .algorithms import algorithm_class
from .data import get_dataset_spec
from .errors import UserError
from .flags import OneOf, base_parser, flag_bool
from .nets.builders import net_builder_for


# ---- a config file ---------------------------------------------------------------------------
def load_yaml(path: str) -> dict:
    """A config file in USB's YAML format as a dict (``-`` in keys read as ``_``)."""
    import yaml

    if not os.path.isfile(path):
        raise UserError(f"config file '{path}' does not exist; expected a YAML file in USB's format")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise UserError(f"config file '{path}' is not valid YAML{where}; expected 'key: value' lines")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{path}' holds a {type(data).__name__}; expected a mapping of key: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def coerce_config_value(key: str, value, action: argparse.Action, path: str):
    """A config value checked against the flag's type; UserError naming the key otherwise."""
    kind = action.type
    if value is None or kind is None:
        return value
    name = getattr(kind, "__name__", str(kind))
    ok = True
    if kind in (flag_bool, str2bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):  # USB's own YAML files write 0 / 1
            return bool(value)
        if isinstance(value, str):
            try:
                return flag_bool(value)
            except argparse.ArgumentTypeError:
                pass
        name, ok = "true or false (or 0 / 1)", False
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        value = str(value) if ok else value
    else:
        try:
            return kind(value)
        except Exception:
            ok = False
    if not ok:
        raise UserError(f"config file '{path}': key '{key}' has value {value!r} ({type(value).__name__}); "
                        f"expected {name}")
    if action.choices is not None and value not in action.choices:
        raise UserError(f"config file '{path}': key '{key}' is {value!r}; expected one of {list(action.choices)}")
    return value


# ---- the arguments -----------------------------------------------------------------------------
def algorithm_arguments(algorithm: str) -> list:
    """The ``SSL_Argument`` list of a registered algorithm (UserError if unknown)."""
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
        if isinstance(arg.type, OneOf):
            group.add_argument(arg.name, type=str, choices=arg.type.choices, default=arg.default, help=arg.help)
        else:
            group.add_argument(arg.name, type=flag_bool if arg.type in (str2bool, bool) else arg.type,
                               default=arg.default, help=arg.help)
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


# ---- the algorithm -----------------------------------------------------------------------------
def build_algorithm(args: argparse.Namespace, logger: Optional[logging.Logger] = None, tb_log=None):
    """``args.algorithm``'s class with the runtime in front, built on ``args.net``
    (datasets, model, EMA model, optimizer and hooks; nothing trained yet).  Without
    ``args.distributed`` (set by ``semilearn train``'s launcher) it runs as one process."""
    if not hasattr(args, "distributed"):
        args.distributed = False
    return algorithm_class(args.algorithm)(args, net_builder_for(args), tb_log,
                                           logger or logging.getLogger("leaf_plugin"))


def algorithm_from_argv(argv: Sequence[str], logger: Optional[logging.Logger] = None, **parse_kwargs):
    """:func:`build_algorithm` of ``semilearn train ARGV``'s arguments."""
    return build_algorithm(parse_train_args([str(a) for a in argv], **parse_kwargs), logger)
