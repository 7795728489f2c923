"""A config file's value checked against the type of the flag it sets."""
from __future__ import annotations

import argparse

from semilearn.algorithms.utils import str2bool

from ..errors import UserError
from ..flags import flag_bool


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
