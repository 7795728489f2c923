"""Shared helpers: run the real ``semilearn`` command in-process, tiny and on the CPU."""
from __future__ import annotations

import importlib.util
import json
import os

# idle OpenMP threads sleep instead of spinning, set before torch is imported: when a test's
# subprocess and pytest both hold threads, spinning made identical runs 3x slower on 2 cores
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FER_NPZ = (REPO / ".." / "shared" / "data" / "fer2013" / "fer2013_dev.npz").resolve()
FERPLUS_NPZ = (REPO / ".." / "shared" / "data" / "ferplus" / "ferplus_dev.npz").resolve()
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
NO_SHARED_DATA = "skipped, no ../shared/data"  # the summary line's name for the tests that need it


def pytest_report_teststatus(report, config):
    """A test skipped because the shared faces are not beside the checkout is counted apart, so
    the run's summary line says so ("... passed, 36 skipped, no ../shared/data")."""
    if report.skipped and str(SHARED_DATA) in str(report.longrepr):
        return NO_SHARED_DATA, "s", "SKIPPED (no ../shared/data)"
    return None


def load_benchmark(name: str, module_name: str = ""):
    """``benchmarks/<name>.py`` (``name`` may be ``probes/<script>``) as a module, loaded by its path
    (``benchmarks/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(module_name or name.split("/")[-1],
                                                  REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def free_port() -> int:
    """A TCP port free on the loopback interface (for a gloo rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_and_resume(tmp_path, capsys, flags, resume_flags=()):
    """A 12-iteration run (evaluated and checkpointed every 4) trained whole, and the same run
    stopped at iteration 8 then resumed (with ``resume_flags`` added) to 12: the two final
    checkpoints, each as ``(model state, EMA model state, results)``."""
    import logging
    import random

    import numpy as np
    import torch

    from leaf_plugin.arguments import algorithm_from_argv

    common = [*TINY, "--num_train_iter", "12", "--num_eval_iter", "4", *map(str, flags),
              "--save_dir", str(tmp_path)]
    rc, _, err = run_cli(["train", *common, "--save_name", "whole"], capsys)
    assert rc == 0, err
    torch.manual_seed(0), np.random.seed(0), random.seed(0)  # as semilearn train seeds a run (seed 0)
    part = algorithm_from_argv([*common, "--save_name", "part"], logging.getLogger("t"))
    part.num_train_iter = 8  # stops there; the learning-rate schedule is still the 12-iteration one
    part.train()
    assert torch.load(tmp_path / "part" / "latest_model.pth", weights_only=False)["it"] == 8
    rc, _, err = run_cli(["train", *common, "--save_name", "part", "--resume", *map(str, resume_flags)], capsys)
    assert rc == 0, err

    def final(name):
        ckpt = torch.load(tmp_path / name / "latest_model.pth", map_location="cpu", weights_only=False)
        return ckpt["model"], ckpt["ema_model"], json.loads((tmp_path / name / "results.json").read_text())

    return final("whole"), final("part")


def assert_same_weights(whole, resumed, atol=1e-6):
    import torch

    for reference, other in zip(whole[:2], resumed[:2]):
        assert reference.keys() == other.keys()
        for key in reference:
            torch.testing.assert_close(other[key], reference[key], rtol=0, atol=atol, msg=key)
    assert resumed[2]["top1"] == pytest.approx(whole[2]["top1"], abs=1e-12)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def fer_faces():
    """Real faces of the shared FER2013 file by class, blank ones skipped: ``{'train': [7 x [12, 48, 48]],
    'test': [7 x [12, 48, 48]]}`` uint8 (classes angry ... neutral). Skips the test without ../shared/data."""
    import numpy as np

    if not FER_NPZ.is_file():
        pytest.skip(f"shared FER2013 faces not found at {FER_NPZ}")
    out = {}
    with np.load(FER_NPZ) as z:
        for split, (xk, yk) in {"train": ("x_train", "y_train"), "test": ("x_val", "y_val")}.items():
            x, y = z[xk], z[yk]
            out[split] = []
            for c in range(7):
                idx = np.flatnonzero(y == c)
                idx = idx[x[idx].reshape(len(idx), -1).std(1) > 20][:12]  # skip the blank images
                out[split].append(x[idx].copy())
    return out


@pytest.fixture
def tiny():
    return list(TINY)


@pytest.fixture(scope="session")
def served_models(tmp_path_factory):
    """A 2-iteration leaf_fixmatch run on digits (16 px) and its ONNX export (with the gate outputs),
    for the ``semilearn serve`` tests: ``{"checkpoint": path, "onnx": path}``."""
    folder = tmp_path_factory.mktemp("serve_models")
    rc, _, _ = run_cli(["train", *TINY, "--num_train_iter", "2", "--num_eval_iter", "2", "--save_dir", folder,
                        "--save_name", "leaf"])
    assert rc == 0
    checkpoint = folder / "leaf" / "model_best.pth"
    rc, _, _ = run_cli(["export", "--load_path", checkpoint, "--out", folder / "leaf.onnx"])
    assert rc == 0
    return {"checkpoint": checkpoint, "onnx": folder / "leaf.onnx"}
