"""benchmarks/probes/positive_sets.py: the category level's positive sets read off a trained run."""
from __future__ import annotations

import pytest
import torch

from conftest import TINY, load_benchmark, run_cli


def load_script():
    return load_benchmark("probes/positive_sets")


def test_rule_stats_by_hand():
    ps = load_script()
    # rows 0-1 rejected; tau .9: row 0 (.6,.25,.1,.05) -> n 2 (S_2 .85 < .9, S_3 .95), row 1 (.5,.45,...) -> n 1
    q = torch.tensor([[0.6, 0.25, 0.1, 0.05], [0.5, 0.45, 0.03, 0.02], [0.97, 0.01, 0.01, 0.01]])
    y = torch.tensor([1, 1, 0])
    rejected = torch.tensor([True, True, False])
    s = ps.rule_stats(q, y, rejected, tau=0.9, max_pos=3, min_pos=1, lam=50.0)
    assert s["rejected"] == 2 and s["size"] == 3 and s["hit"] == 1 and s["argmax_hit"] == 0
    s2 = ps.rule_stats(q, y, rejected, tau=0.9, max_pos=3, min_pos=2, lam=50.0)
    assert s2["size"] == 4 and s2["hit"] == 2  # row 1's set grows to {0, 1}
    mu = 0.98 / 3  # row 1 at n = 2: S_3 / 3, q(3) = .03
    w_row1 = torch.log1p(torch.tensor(50 * (mu - 0.03))) / torch.log1p(torch.tensor(50 * mu))
    mu0 = 0.95 / 3
    w_row0 = torch.log1p(torch.tensor(50 * (mu0 - 0.1))) / torch.log1p(torch.tensor(50 * mu0))
    assert s2["weight"] == pytest.approx(float(w_row0 + w_row1), abs=1e-5)
    assert ps.rule_stats(q, y, torch.zeros(3, dtype=torch.bool), 0.9, 3, 1, 50.0)["rejected"] == 0


def test_table_from_a_leaf_run_and_refusals(tmp_path, capsys):
    rc, _, err = run_cli(["train", *TINY, "--algorithm", "leaf_fixmatch", "--num_train_iter", "2",
                          "--num_eval_iter", "2", "--save_dir", tmp_path, "--save_name", "leaf"], capsys)
    assert rc == 0, err
    ps = load_script()
    ckpt = str(tmp_path / "leaf" / "latest_model.pth")
    assert ps.main([ckpt, "--rules", "0.9,1", "0.9,2", "--max_batches", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 0.9 |")]
    assert len(rows) == 2
    one, two = ([c.strip() for c in r.strip("|").split("|")] for r in rows)
    assert one[3] == two[3]  # the same rejected fraction under both rules
    assert float(two[4]) >= 2.0 and float(two[4]) >= float(one[4])  # sets of at least two
    assert float(two[5]) >= float(one[5])  # a larger set holds the true class at least as often
    with pytest.raises(SystemExit):
        ps.main([ckpt, "--rules", "0.9,4"])
    assert "not in 1..--max_pos (3)" in capsys.readouterr().err
    rc, _, err = run_cli(["train", *TINY, "--algorithm", "fixmatch", "--num_train_iter", "2",
                          "--num_eval_iter", "2", "--save_dir", tmp_path, "--save_name", "host"], capsys)
    assert rc == 0, err
    assert ps.main([str(tmp_path / "host" / "latest_model.pth")]) == 2
    assert "is not a LEAF run" in capsys.readouterr().err
