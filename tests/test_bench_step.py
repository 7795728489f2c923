"""benchmarks/bench_step.py on a tiny step: one table row per host, ratios that match the times."""
from __future__ import annotations

import importlib.util

from conftest import REPO


def test_bench_step_prints_consistent_ratios(capsys):
    spec = importlib.util.spec_from_file_location("bench_step", REPO / "benchmarks" / "bench_step.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--hosts", "fixmatch", "--uratio", "1", "--img_size", "16", "--batch_size", "4",
                "--repeats", "2", "--warmup", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| fixmatch |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    host, leaf, ratio, nograd, ratio2 = map(float, cells[2:])
    assert cells[1] == "1" and min(host, leaf, nograd) > 0
    # times are printed to 0.1 ms and ratios to 0.01: equal up to that rounding
    tol = 0.006 + ratio * 0.05 * (1 / host + 1 / leaf + 1 / nograd)
    assert abs(ratio - leaf / host) < tol and abs(ratio2 - nograd / host) < tol
