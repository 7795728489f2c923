"""Shared helpers: run the real ``semilearn`` command in-process, tiny and on the CPU."""
from __future__ import annotations

import json
import os

# idle OpenMP threads sleep instead of spinning, set before torch is imported: when a test's
# subprocess and pytest both hold threads, spinning made identical runs 3x slower on 2 cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FER_NPZ = (REPO / ".." / "shared" / "data" / "fer2013" / "fer2013_dev.npz").resolve()

# small and fast: 16 px digits, 4 labeled + 4 unlabeled per step
TINY = ["--device", "cpu", "--use_tensorboard", "false", "--progress", "false", "--report", "false",
        "--img_size", "16", "--batch_size", "4", "--uratio", "1", "--num_workers", "0",
        "--num_log_iter", "1", "--eval_batch_size", "512"]


def run_cli(argv, capsys=None):
    """(exit code, stdout, stderr) of ``semilearn ARGV`` run in this process."""
    from leaf_plugin.cli.main import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return rc, out, err


def run_cli_subprocess(argv, timeout=600, **kwargs):
    """``semilearn ARGV`` in a fresh interpreter (for kills and real exit codes)."""
    code = "import sys; from leaf_plugin.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kwargs)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def tiny():
    return list(TINY)
