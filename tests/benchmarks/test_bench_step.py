"""benchmarks/bench_step.py on a tiny step: one table row per host, ratios that match the times,
and the runtime-variant table (plain, channels-last, autocast) with speed-ups that match its times."""
from __future__ import annotations

from conftest import load_benchmark


def load_bench():
    return load_benchmark("bench_step")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_bench_step_prints_consistent_ratios(capsys):
    bench = load_bench()
    bench.main(["--hosts", "fixmatch", "--uratio", "1", "--img_size", "16", "--batch_size", "4",
                "--repeats", "2", "--warmup", "1", "--variants", "channels_last", "autocast"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| fixmatch |")]
    assert len(rows) == 1
    row = cells(rows[0])
    host, leaf, ratio, nograd, ratio2 = map(float, row[2:])
    assert row[1] == "1" and min(host, leaf, nograd) > 0
    # times are printed to 0.1 ms and ratios to 0.01: equal up to that rounding
    tol = 0.006 + ratio * 0.05 * (1 / host + 1 / leaf + 1 / nograd)
    assert abs(ratio - leaf / host) < tol and abs(ratio2 - nograd / host) < tol

    variants = {cells(line)[0]: cells(line) for line in out.splitlines()
                if line.startswith(("| plain |", "| channels_last |", "| autocast |", "| best"))}
    assert {"plain", "channels_last", "autocast"} <= set(variants)
    plain_host, plain_leaf = map(float, variants["plain"][1:3])
    for name in ("plain", "channels_last", "autocast"):
        h, f, r, up_h, up_f = map(float, variants[name][1:])
        tol = 0.006 + 0.05 * (1 / h + 1 / f + 1 / plain_host + 1 / plain_leaf) * max(r, up_h, up_f)
        assert abs(r - f / h) < tol and abs(up_h - plain_host / h) < tol and abs(up_f - plain_leaf / f) < tol
    assert any(k.startswith("best") for k in variants)
