"""Parsing ``semilearn train`` arguments: config file, coercion, merging, checks."""
from .coercion import coerce_config_value
from .parsing import algorithm_arguments, finalize_args, parse_train_args, require_positive
from .yaml_file import load_yaml

__all__ = ["algorithm_arguments", "coerce_config_value", "finalize_args", "load_yaml", "parse_train_args",
           "require_positive"]
