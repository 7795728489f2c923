"""--ema_bn (the EMA model's BatchNorm statistics), the evaluation cadence and the tail score."""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY, assert_same_weights, run_cli, stop_and_resume


def test_buffer_ema_averages_the_running_statistics_with_the_given_decay():
    from leaf_plugin.runtime.ema_bn import BufferEMA

    live, ema_model = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    averager = BufferEMA(ema_model)  # starts from the EMA model's own: mean 0, var 1
    live.running_mean.copy_(torch.tensor([1.0, 2.0]))
    live.running_var.copy_(torch.tensor([3.0, 5.0]))
    averager.update(live, decay=0.75)
    averager.copy_to(ema_model)
    assert torch.allclose(ema_model.running_mean, torch.tensor([0.25, 0.5]))
    assert torch.allclose(ema_model.running_var, torch.tensor([0.75 + 0.75, 0.75 + 1.25]))
    averager.update(live, decay=0.5)
    assert torch.allclose(averager.shadow["running_mean"], torch.tensor([0.625, 1.25]))


def test_recompute_gives_the_average_of_the_batch_statistics_and_leaves_the_random_state_alone():
    from leaf_plugin.runtime.ema_bn import recompute_bn_statistics

    data = torch.arange(24, dtype=torch.float32).reshape(12, 1, 1, 2)  # 12 images, 1 channel, 1x2 pixels

    class Labeled(torch.utils.data.Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            return {"idx_lb": i, "x_lb": data[i], "y_lb": 0}

    model = nn.Sequential(nn.BatchNorm2d(1))
    model[0].running_mean.fill_(7.0)
    args = SimpleNamespace(batch_size=4, uratio=1, seed=0)
    alg = SimpleNamespace(args=args, it=3, device=torch.device("cpu"), dataset_dict={"train_lb": Labeled()},
                          process_batch=lambda **kw: kw)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    before = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    recompute_bn_statistics(alg, model, num_batches=3)  # three batches of 4: every image once
    assert (random.random(), np.random.rand(), torch.rand(1)) == before
    assert model[0].running_mean.item() == pytest.approx(data.mean().item())
    # the cumulative average of the three batches' unbiased variances
    batches = [data[list(idx)] for idx in torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(range(12), generator=torch.Generator().manual_seed(3)), 4, True)]
    expected = sum(b.var().item() for b in batches) / 3
    assert model[0].running_var.item() == pytest.approx(expected, rel=1e-5)
    assert model[0].momentum == 0.1 and model.training


@pytest.mark.parametrize("it,expected", [(9, True), (19, True), (10, False), (80, False), (84, True),
                                         (81, False), (89, True), (99, True), (94, True)])
def test_evaluations_every_num_eval_iter_and_densely_in_the_last_fifth(it, expected):
    from leaf_plugin.history import is_eval_iteration

    alg = SimpleNamespace(it=it, num_train_iter=100, num_eval_iter=10, args=SimpleNamespace(num_eval_iter_tail=5))
    assert is_eval_iteration(alg) is expected
    alg.args.num_eval_iter_tail = 0
    assert is_eval_iteration(alg) is ((it + 1) % 10 == 0)


def test_tail_score_is_the_mean_of_the_last_five_evaluations_counting_a_resumed_one_once():
    from leaf_plugin.history import tail_scores

    rows = [{"it": 10, "train/sup_loss": 1.0}]
    rows += [{"it": i, "eval/top-1-acc": i / 100, "eval/balanced_acc": i / 200} for i in (20, 40, 60, 80, 90, 100)]
    rows += [{"it": 90, "eval/top-1-acc": 0.95, "eval/balanced_acc": 0.5}]  # logged again after a resume
    tail = tail_scores(rows)
    assert tail["top1_tail"] == pytest.approx((0.40 + 0.60 + 0.80 + 0.95 + 1.00) / 5)
    assert tail["balanced_tail"] == pytest.approx((0.20 + 0.30 + 0.40 + 0.50 + 0.50) / 5)
    assert tail["tail_evaluations"] == 5
    assert tail_scores([{"it": 1}]) == {}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["live", "ema", "recompute"])
def test_resume_is_exact_under_each_ema_bn_mode(tmp_path, capsys, mode):
    whole, resumed = stop_and_resume(tmp_path, capsys, ["--algorithm", "fixmatch", "--ema_m", "0.9", "--ema_bn", mode,
                                                        "--ema_bn_batches", "2"])
    assert_same_weights(whole, resumed)


@pytest.mark.slow
def test_ema_bn_compare_logs_every_mode_and_recompute_matches_its_own_evaluation(tmp_path, capsys):
    rc, _, err = run_cli(["train", "--algorithm", "fixmatch", *TINY, "--num_train_iter", "6", "--num_eval_iter", "3",
                          "--ema_bn", "recompute", "--ema_bn_batches", "2", "--ema_bn_compare", "true",
                          "--save_dir", tmp_path, "--save_name", "r"], capsys)
    assert rc == 0, err
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in rows if "eval/top-1-acc" in r]
    assert [r["it"] for r in evaluated] == [3, 6]
    for row in evaluated:
        assert {f"eval_bn_{m}/top-1-acc" for m in ("live", "ema", "recompute")} <= row.keys()
        assert row["eval_bn_recompute/top-1-acc"] == row["eval/top-1-acc"]
    result = json.loads((tmp_path / "r" / "results.json").read_text())
    assert result["top1"] == pytest.approx(evaluated[-1]["eval/top-1-acc"], abs=1e-12)
    assert result["top1_tail"] == pytest.approx(sum(r["eval/top-1-acc"] for r in evaluated) / 2)
