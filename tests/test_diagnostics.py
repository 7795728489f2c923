"""Pseudo-label quantity and quality: each logged number against a hand computation."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY, run_cli


def test_window_ratios_against_a_hand_computation():
    from leaf_plugin.runtime.diagnostics import PseudoLabelStats

    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    stats = PseudoLabelStats(targets)
    # step 1: samples 0, 1, 2; the mask accepts 0 and 1, pseudo-labels 0 (right), 2 (wrong), 2 (right)
    positive = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    stats.add(torch.tensor([0, 1, 2]), torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0, 2, 2]), positive)
    # step 2: samples 3, 4 with soft pseudo-labels; soft mask 0.5 and 0.25 (sample 4 rejected)
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    positive = torch.tensor([[1, 0, 0], [1, 0, 1]], dtype=torch.bool)
    stats.add(torch.tensor([3, 4]), torch.tensor([0.5, 0.25]), soft, positive)
    out = stats.flush()
    # accepted weight 1 + 1 + 0 + 0.5 + 0.25 = 2.75 of 5; right: samples 0, 2, 3 (labels 0, 2, 0)
    assert out["train/pl_mask_ratio"] == pytest.approx(2.75 / 5)
    assert out["train/pl_accuracy"] == pytest.approx((1.0 + 0.0 + 0.5 + 0.0) / 2.75)
    assert out["train/pl_all_accuracy"] == pytest.approx(3 / 5)
    # rejected (mask < 0.5): sample 2 (true 2, set {2}: hit, size 1), sample 4 (true 1, set {0, 2}: miss, size 2)
    assert out["train/leaf_pos_hit"] == pytest.approx(1 / 2)
    assert out["train/leaf_pos_size_rejected"] == pytest.approx(3 / 2)
    assert stats.flush() == {}  # a new window


def test_without_positive_sets_no_leaf_keys_and_unlabeled_sets_without_labels_are_skipped():
    from leaf_plugin.runtime.diagnostics import PseudoLabelStats, unlabeled_targets

    stats = PseudoLabelStats(torch.tensor([1, 1]))
    stats.add(torch.tensor([0, 1]), torch.tensor([1.0, 0.0]), torch.tensor([1, 0]))
    out = stats.flush()
    assert set(out) == {"train/pl_mask_ratio", "train/pl_accuracy", "train/pl_all_accuracy"}
    assert out["train/pl_accuracy"] == 1.0 and out["train/pl_all_accuracy"] == 0.5

    class Unlabeled:
        targets = None

    assert unlabeled_targets(Unlabeled(), torch.device("cpu")) is None
    Unlabeled.targets = [-1, -1]
    assert unlabeled_targets(Unlabeled(), torch.device("cpu")) is None


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fixmatch", "leaf_fixmatch", "freematch", "fullysupervised"])
def test_every_algorithm_logs_the_diagnostics_it_has(tmp_path, capsys, algorithm):
    rc, _, err = run_cli(["train", "--algorithm", algorithm, *TINY, "--num_train_iter", "4", "--num_eval_iter", "4",
                          "--num_log_iter", "2", "--save_dir", tmp_path, "--save_name", "r"], capsys)
    assert rc == 0, err
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "train/pl_accuracy" in r or "train/pl_mask_ratio" in r]
    if algorithm == "fullysupervised":
        assert not logged  # no unlabeled data, no pseudo-labels
        return
    assert [r["it"] for r in logged] == [2, 4]
    for row in logged:
        assert 0.0 <= row["train/pl_mask_ratio"] <= 1.0 and 0.0 <= row["train/pl_all_accuracy"] <= 1.0
        assert ("train/leaf_pos_hit" in row) == algorithm.startswith("leaf")
