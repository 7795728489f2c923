"""Long-run reliability: atomic checkpoints, exact resume after SIGKILL, non-finite losses."""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, TINY, read_jsonl, run_cli

LOSS_KEYS = ("train/sup_loss", "train/unsup_loss", "train/total_loss", "train/util_ratio",
             "train/leaf_amb_loss", "train/leaf_con_loss", "train/leaf_balance_loss")


def by_iteration(rows):
    """The last row logged for each iteration (a resumed run logs some twice)."""
    return {r["it"]: r for r in rows}


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    common = ["train", *TINY, "--algorithm", "leaf_fixmatch", "--batch_size", "8", "--num_train_iter", "14",
              "--num_eval_iter", "3", "--seed", "3", "--save_dir", tmp_path]
    code = "import sys; from leaf_plugin.cli.main import main; sys.exit(main(sys.argv[1:]))"
    whole = subprocess.run([sys.executable, "-c", code, *map(str, common), "--save_name", "whole"],
                           capture_output=True, text=True, cwd=REPO, timeout=600)
    assert whole.returncode == 0, whole.stderr
    reference = by_iteration(read_jsonl(tmp_path / "whole" / "metrics.jsonl"))

    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, common), "--save_name", "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    history = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline:  # kill once a checkpoint exists and training has gone past it
        if history.exists() and any(r["it"] >= 8 for r in read_jsonl(history)):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoint = torch.load(tmp_path / "killed" / "latest_model.pth", map_location="cpu", weights_only=False)
    resumed_from = checkpoint["it"]
    assert 6 <= resumed_from < 14

    rc, _, _ = run_cli([*common, "--save_name", "killed", "--resume"])
    assert rc == 0
    resumed = by_iteration(read_jsonl(history))
    assert set(resumed) == set(reference)
    for it in range(resumed_from + 1, 15):
        for key in LOSS_KEYS:
            assert resumed[it][key] == pytest.approx(reference[it][key], abs=1e-6), (it, key)


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    from leaf_plugin.checkpoint import atomic_save

    path = tmp_path / "latest_model.pth"
    atomic_save({"it": 1, "w": torch.ones(3)}, str(path))
    script = f"""
import os, signal, torch
from leaf_plugin import checkpoint
real_save = torch.save
def dying_save(obj, f, *a, **k):
    f.write(b"PK\\x03\\x04 half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
checkpoint.torch.save = dying_save
checkpoint.atomic_save({{"it": 2, "w": torch.zeros(3)}}, {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    loaded = torch.load(path, map_location="cpu")
    assert loaded["it"] == 1 and torch.equal(loaded["w"], torch.ones(3))


class NaNAt:
    """Makes a host's loss non-finite at one iteration, through its log and loss."""

    def __init__(self, host, at):
        self.host, self.at = host, at

    def cls(self):
        at = self.at

        class NaNHost(self.host):
            def train_step(self, x_lb, y_lb, x_ulb_w, x_ulb_s):
                out, log = super().train_step(x_lb, y_lb, x_ulb_w, x_ulb_s)
                if self.it + 1 == at:
                    out["loss"] = out["loss"] * float("nan")
                    log["train/sup_loss"] = float("nan")
                return out, log
        return NaNHost


def test_non_finite_loss_stops_with_exit_3_and_keeps_the_last_checkpoint(tmp_path, capsys):
    from semilearn.algorithms.fixmatch import FixMatch
    from semilearn.core.utils import ALGORITHMS

    ALGORITHMS._dict["nan_fixmatch"] = NaNAt(FixMatch, 5).cls()
    try:
        rc, out, err = run_cli(["train", *TINY, "--algorithm", "nan_fixmatch", "--num_train_iter", "8",
                                "--num_eval_iter", "2", "--save_dir", tmp_path], capsys)
        assert rc == 3
        assert "iteration 5: loss term 'sup_loss' is non-finite" in err
        errors = [line for line in err.splitlines() if "error:" in line]
        assert errors == [err.strip().splitlines()[-1]] and "Traceback" not in err
        kept = torch.load(tmp_path / "nan_fixmatch_digits_40_0" / "latest_model.pth", map_location="cpu",
                          weights_only=False)
        assert kept["it"] == 4
        assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())

        rc, out, err = run_cli(["train", *TINY, "--algorithm", "nan_fixmatch", "--num_train_iter", "8",
                                "--num_eval_iter", "2", "--save_dir", tmp_path, "--overwrite",
                                "--skip_nonfinite", "1"], capsys)
        assert rc == 0, err
        log = (tmp_path / "nan_fixmatch_digits_40_0" / "log.txt").read_text()
        assert "iteration 5: loss term 'sup_loss' is non-finite; step skipped (1/1)" in log
    finally:
        del ALGORITHMS._dict["nan_fixmatch"]


def test_debiased_ema_is_the_normalised_average_of_trained_weights():
    """Three updates with m = 0.9 by hand: the initial weights get no share."""
    import copy
    from types import SimpleNamespace

    from leaf_plugin.runtime import DebiasedEMAHook, debiased_decay

    assert debiased_decay(0.9, 1) == 0.0
    assert debiased_decay(0.9, 2) == pytest.approx(1 - 0.1 / 0.19)
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(100.0)  # the random start
    alg = SimpleNamespace(model=model, ema_model=copy.deepcopy(model), ema_m=0.9, resume=False, it=0)
    hook = DebiasedEMAHook()
    hook.before_run(alg)
    thetas = [1.0, 2.0, 4.0]
    for it, theta in enumerate(thetas):
        model.weight.data.fill_(theta)
        alg.it = it
        hook.after_train_step(alg)
    w = [0.9 ** 2 * 0.1, 0.9 * 0.1, 0.1]  # m^(t-i) (1 - m)
    expected = sum(wi * t for wi, t in zip(w, thetas)) / (1 - 0.9 ** 3)
    assert alg.ema_model.weight.item() == pytest.approx(expected, rel=1e-6)
    assert alg.ema.shadow["weight"].item() == pytest.approx(expected, rel=1e-6)


def test_ema_debias_flag_replaces_the_ema_hook(tmp_path):
    from leaf_plugin.arguments import algorithm_from_argv
    from leaf_plugin.runtime import DebiasedEMAHook

    for debias in (True, False):
        alg = algorithm_from_argv(["--algorithm", "fixmatch", *TINY, "--save_dir", str(tmp_path),
                                   "--ema_debias", str(debias).lower()], logging.getLogger("t"))
        assert isinstance(alg.hooks_dict["EMAHook"], DebiasedEMAHook) == debias
