"""benchmarks/gpu_check.sh on a machine without CUDA: one line saying so, exit status 0, nothing run;
gpu_bundle.sh without a verb: its usage."""
from __future__ import annotations

import os
import subprocess

from conftest import REPO


def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "no CUDA" in lines[0], proc.stdout
    assert not (tmp_path / "out" / "runs").exists()


def test_gpu_bundle_without_a_verb_prints_its_usage_and_exits_2():
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_bundle.sh")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "usage: benchmarks/gpu_bundle.sh pack | run OUT_DIR"
    assert proc.stdout == ""
