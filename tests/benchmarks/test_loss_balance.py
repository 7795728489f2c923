"""benchmarks/probes/loss_balance.py: the loss terms' means per part of training, by hand, and refusals."""
from __future__ import annotations

import json

from conftest import load_benchmark


def load_script():
    return load_benchmark("probes/loss_balance")


def write_run(folder, rows):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_halves_by_hand(tmp_path, capsys):
    lb = load_script()
    write_run(tmp_path / "leaf_run", [
        {"it": 100, "train/sup_loss": 1.0, "train/unsup_loss": 0.2, "train/leaf_amb_loss": 0.9, "train/leaf_con_loss": 1.0},
        {"it": 200, "train/sup_loss": 0.5, "train/unsup_loss": 0.4, "train/leaf_amb_loss": 0.7, "train/leaf_con_loss": 0.5},
        {"it": 200, "eval/top-1-acc": 0.4},  # an evaluation record: no loss terms, skipped
        {"it": 300, "train/sup_loss": 0.1, "train/unsup_loss": 0.3, "train/leaf_amb_loss": 0.5, "train/leaf_con_loss": None},
        {"it": 400, "train/sup_loss": 0.3, "train/unsup_loss": 0.5, "train/leaf_amb_loss": 0.1, "train/leaf_con_loss": 0.2},
    ])
    write_run(tmp_path / "host_run", [{"it": 200, "train/sup_loss": 0.4, "train/unsup_loss": 0.6},
                                      {"it": 400, "train/sup_loss": 0.2, "train/unsup_loss": 0.2}])
    assert lb.main([str(tmp_path / "leaf_run"), str(tmp_path / "host_run")]) == 0
    out = capsys.readouterr().out
    assert "| run | iterations | sup | host unlabeled | ambiguous | two-view |" in out
    # first half (its 100, 200): sup (1.0 + 0.5) / 2, unsup (0.2 + 0.4) / 2, amb (0.9 + 0.7) / 2, con (1.0 + 0.5) / 2
    assert "| leaf_run | 0-200 | 0.750 | 0.300 | 0.800 | 0.750 |" in out
    # second half: con has one finite value (0.2)
    assert "| leaf_run | 200-400 | 0.200 | 0.400 | 0.300 | 0.200 |" in out
    assert "| host_run | 0-200 | 0.400 | 0.600 | - | - |" in out
    assert lb.main([str(tmp_path / "leaf_run"), "--parts", "4"]) == 0
    assert "| leaf_run | 300-400 | 0.300 | 0.500 | 0.100 | 0.200 |" in capsys.readouterr().out


def test_refuses_a_folder_without_metrics(tmp_path, capsys):
    lb = load_script()
    assert lb.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no metrics.jsonl in" in err and "expected a run folder" in err
