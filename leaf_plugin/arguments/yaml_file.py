"""Reading a config file in USB's YAML format."""
from __future__ import annotations

import os

from ..errors import UserError


def load_yaml(path: str) -> dict:
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
