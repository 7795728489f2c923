"""Finding and reading the label files of the file-based datasets (CSV and text lists).

Every problem is a ``UserError`` naming the path (and line) and what was expected.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from ..errors import UserError


def data_dir_of(args, dataset: str, layout: str) -> str:
    """``--data_dir`` expanded; UserError quoting ``layout`` when it is not a directory."""
    path = os.path.expanduser(str(args.data_dir or ""))
    if not os.path.isdir(path):
        state = "is not a directory" if os.path.exists(path) else "does not exist"
        raise UserError(f"--data_dir '{path}' {state} (dataset '{dataset}'); expected {layout}")
    return path


def find_file(candidates: Sequence[str], what: str, layout: str) -> str:
    """The first existing file of ``candidates``; the error names the first one."""
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise UserError(f"{what} '{candidates[0]}' does not exist; expected {layout}")


def open_csv(path: str):
    # utf-8-sig: files saved by spreadsheet programs often start with a BOM
    return open(path, newline="", encoding="utf-8-sig")


def column_index(header: Sequence[str], name: str) -> Optional[int]:
    """Index of column ``name`` in ``header`` (case and spaces ignored), or None."""
    wanted = name.strip().lower()
    for i, col in enumerate(header):
        if col.strip().lower() == wanted:
            return i
    return None


def data_rows(rows, reader, path: str):
    """``(where, row)`` for the non-blank rows of a csv ``reader`` (``rows`` iterates it)."""
    for row in rows:
        if row and any(field.strip() for field in row):
            yield f"'{path}' line {reader.line_num}", row


def parse_label(text: str, where: str, first: int, names: Sequence[str], field: str = "label") -> int:
    """``text`` as a class id in ``first .. first + len(names) - 1``; UserError naming ``where`` otherwise."""
    last = first + len(names) - 1
    expected = f"expected {first}..{last} ({', '.join(names)})"
    try:
        label = int(text)
    except ValueError:
        raise UserError(f"{where}: {field} {text!r} is not an integer; {expected}")
    if not first <= label <= last:
        raise UserError(f"{where}: {field} {label} is out of range; {expected}")
    return label
