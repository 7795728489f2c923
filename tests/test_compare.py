"""benchmarks/compare.py on a CI-sized grid: CSV, table and plots are produced and consistent."""
from __future__ import annotations

import csv
import importlib.util
import statistics

import pytest

from conftest import REPO


def load_compare():
    spec = importlib.util.spec_from_file_location("compare", REPO / "benchmarks" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compare_grid_csv_table_and_resume(tmp_path, capsys):
    compare = load_compare()
    argv = ["--name", "ci", "--protocol", "digits", "--algorithms", "fixmatch", "leaf_fixmatch", "--seeds", "0",
            "--num_train_iter", "4", "--num_eval_iter", "2", "--num_log_iter", "1",
            "--results_dir", str(tmp_path / "results"), "--runs_dir", str(tmp_path / "runs"),
            "--", "--img_size", "16", "--batch_size", "4", "--uratio", "1"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    with open(tmp_path / "results" / "ci.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["algorithm"] for r in rows] == ["fixmatch", "leaf_fixmatch"]
    for r in rows:
        assert r["seed"] == "0" and r["labels"] == "40" and r["iterations"] == "4"
        assert 0 <= float(r["top1"]) <= 1 and 0 <= float(r["balanced_acc"]) <= 1 and r["git_commit"]
        assert f"| {r['algorithm']} | 0 | {100 * float(r['top1']):.2f} +- 0.00 |" in out
    diff = 100 * (float(rows[1]["top1"]) - float(rows[0]["top1"]))
    assert f"| leaf_fixmatch - fixmatch | 0: {diff:+.2f} | {diff:+.2f} | {diff:+.2f} |" in out
    for png in ("ci_bars.png", "ci_curves.png"):
        assert (tmp_path / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a second call re-runs nothing and prints the same table
    assert compare.main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("[skip]") == 2 and "[run ]" not in again
    assert len(list(csv.DictReader(open(tmp_path / "results" / "ci.csv")))) == 2


def test_summary_statistics_by_hand():
    compare = load_compare()
    rows = [{"algorithm": a, "seed": s, "top1": t, "balanced_acc": b, "wall_time_s": "10"}
            for a, s, t, b in [("fixmatch", 0, "0.40", "0.30"), ("fixmatch", 1, "0.42", "0.32"),
                               ("leaf_fixmatch", 0, "0.43", "0.33"), ("leaf_fixmatch", 1, "0.43", "0.35")]]
    table = compare.summarise(rows, ["fixmatch", "leaf_fixmatch"])
    std = 100 * statistics.stdev([0.40, 0.42])
    assert f"| fixmatch | 0,1 | 41.00 +- {std:.2f} | 31.00 +- {std:.2f} | 10 |" in table
    assert "| leaf_fixmatch - fixmatch | 0: +3.00, 1: +1.00 | +2.00 | +1.00 |" in table
