"""The README's 'Wrapping your own algorithm' example runs as written."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO


def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_wrapping_your_own_algorithm_example_runs(tmp_path):
    code = readme_block("Wrapping your own algorithm")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"top-1 \d\.\d{3}, balanced \d\.\d{3}", proc.stdout), proc.stdout
    assert (tmp_path / "runs" / "leaf_mymatch_digits_40_0" / "latest_model.pth").exists()
