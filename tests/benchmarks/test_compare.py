"""benchmarks/compare.py on a CI-sized grid: CSV, table and plots are produced and consistent."""
from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import pytest

from conftest import REPO, load_benchmark


grid_tables = load_benchmark("grid_tables")


def load_compare():
    return load_benchmark("compare")


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
        # the headline is the tail score (mean of the last evaluations), the final score beside it
        assert 0 <= float(r["top1_tail"]) <= 1
        assert f"| {r['algorithm']} | 0 | {100 * float(r['top1_tail']):.2f} +- 0.00 | " \
               f"{100 * float(r['top1']):.2f} +- 0.00 |" in out
    diff = 100 * (float(rows[1]["top1_tail"]) - float(rows[0]["top1_tail"]))
    assert f"| leaf_fixmatch - fixmatch | 0: {diff:+.2f} | {diff:+.2f} | {diff:+.2f} | - |" in out
    for png in ("ci_bars.png", "ci_curves.png"):
        assert (tmp_path / "results" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each cell's curve is kept beside the CSV, with the settings of its row, and printed
    curves = grid_tables.read_curves(tmp_path / "results" / "ci_curves.jsonl")
    assert sorted(curves) == sorted(grid_tables.cell_key(r) for r in rows)
    for r in rows:
        c = curves[grid_tables.cell_key(r)]
        assert [it for it, _ in c["eval"]] == [2, 4] and c["eval"][-1][1] == pytest.approx(float(r["top1"]), abs=1e-6)
        assert 0 <= c["mask_ratio"] <= 1
        assert f"| {r['algorithm']} | 0 | {100 * c['eval'][0][1]:.1f} / {100 * float(r['top1']):.1f} |" in out
        if r["algorithm"] == "fixmatch":
            assert c["pos_size"] is None  # no LEAF, no positive sets

    # a second call re-runs nothing and prints the same table
    assert compare.main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("[skip]") == 2 and "[run ]" not in again
    assert len(list(csv.DictReader(open(tmp_path / "results" / "ci.csv")))) == 2


def test_summary_statistics_by_hand():
    rows = [{"algorithm": a, "seed": s, "top1": t, "balanced_acc": b, "wall_time_s": "10"}
            for a, s, t, b in [("fixmatch", 0, "0.40", "0.30"), ("fixmatch", 1, "0.42", "0.32"),
                               ("leaf_fixmatch", 0, "0.43", "0.33"), ("leaf_fixmatch", 1, "0.43", "0.35")]]
    table = grid_tables.summarise(rows, ["fixmatch", "leaf_fixmatch"])
    std = 100 * statistics.stdev([0.40, 0.42])
    assert f"| fixmatch | 0,1 | 41.00 +- {std:.2f} | 31.00 +- {std:.2f} | 10 |" in table
    assert "| leaf_fixmatch - fixmatch | 0: +3.00, 1: +1.00 | +2.00 | +1.00 |" in table


def test_run_summary_and_curves_table_by_hand(tmp_path):
    compare = load_compare()
    run = tmp_path / "run"
    run.mkdir()
    lines = [{"it": 400, "train/leaf_mask_ratio": 0.1, "train/util_ratio": 0.9, "train/leaf_pos_size": 3.0},
             {"it": 500, "eval/top-1-acc": 0.25},
             {"it": 600, "train/leaf_mask_ratio": 0.4, "train/util_ratio": 0.9, "train/leaf_pos_size": 1.5},
             {"it": 1000, "train/leaf_mask_ratio": 0.6, "train/util_ratio": 0.9, "eval/top-1-acc": 0.375}]
    (run / "metrics.jsonl").write_text("".join(compare.json.dumps(x) + "\n" for x in lines) + '{"it": 10')
    summary = compare.run_summary(run, late=500)  # iterations 501..1000; a line cut short is ignored
    assert summary == {"eval": [[500, 0.25], [1000, 0.375]], "mask_ratio": pytest.approx(0.5),
                       "pos_size": pytest.approx(1.5)}
    assert compare.run_summary(tmp_path / "missing") is None

    row = {"algorithm": "leaf_fixmatch", "seed": "2", "settings": "abc", "run_dir": str(run)}
    path, curves = tmp_path / "c.jsonl", {}
    compare.keep_curve(path, row, curves)
    compare.keep_curve(path, row, curves)  # already kept: not written twice
    assert len(path.read_text().splitlines()) == 1 and grid_tables.read_curves(path) == curves
    table = grid_tables.curves_table([row], curves, ["fixmatch", "leaf_fixmatch"])
    assert "| algorithm | seed | top-1 (%) at 500 / 1000 | mask ratio, last 500 it | positive-set size |" in table
    assert "| leaf_fixmatch | 2 | 25.0 / 37.5 | 0.50 | 1.50 |" in table


CONFIG_ALGORITHMS = ("fixmatch", "leaf_fixmatch", "flexmatch", "leaf_flexmatch", "freematch", "leaf_freematch", "leaf")


def assert_cells_are_configs(grid_argv, config_stem):
    """Each cell of the grid ``grid_argv`` trains with exactly the settings of
    usb_configs/<alg>_<config_stem>_0.yaml (paths compared once resolved)."""
    from leaf_plugin.arguments import parse_train_args

    compare = load_compare()
    opts = compare.build_parser().parse_args(["--name", "x", *grid_argv])
    not_training = {"c", "num_eval_iter", "eval_batch_size", "data_dir", "device", "use_tensorboard"}
    for alg in CONFIG_ALGORITHMS:
        config = vars(parse_train_args(["--c", str(REPO / "usb_configs" / f"{alg}_{config_stem}_0.yaml")]))
        cell = vars(parse_train_args(["--algorithm", alg, *compare.cell_argv(opts, alg, 0)]))
        differ = {k: (config.get(k), cell.get(k)) for k in (set(config) | set(cell)) - not_training
                  if config.get(k) != cell.get(k)}
        assert not differ, (alg, differ)
        assert Path(cell["data_dir"]).resolve() == (REPO / config["data_dir"]).resolve()


def test_fer2013_grid_cells_are_the_cpu_configs():
    assert_cells_are_configs([], "fer2013_175")


@pytest.mark.parametrize("protocol,labels", [("ferplus", 800), ("ferplus_200", 200)])
def test_ferplus_grid_cells_are_the_cpu_configs(protocol, labels):
    """From the SimCLR start, as the FERPlus configs."""
    assert_cells_are_configs(["--protocol", protocol, "--pretrain_path",
                              "benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth"], f"ferplus_{labels}")


def load_study():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))  # study.py imports compare
    try:
        return load_benchmark("study")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def study_opts(tmp_path, **kw):
    base = dict(results_dir=str(tmp_path), baseline="grid", num_train_iter=1200, seeds=[0, 1], pretrain_path="",
                threads=1, runs_dir=str(tmp_path / "runs"), variants=["default", "faithful", "scale_4"],
                host="fixmatch", protocol="fer2013_v1", versus=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_study_table_pairs_each_variant_with_fixmatch(tmp_path):
    study = load_study()
    compare = study.compare
    opts = study_opts(tmp_path)
    keys = {"fixmatch": study.settings(opts, "default", "fixmatch"), "default": study.settings(opts, "default"),
            "faithful": study.settings(opts, "faithful")}
    assert keys["faithful"] != keys["default"]

    def row(alg, seed, top1, iterations=1200, key="default"):
        return {"algorithm": alg, "seed": seed, "labels": 175, "iterations": iterations, "top1": top1,
                "balanced_acc": "0.30", "wall_time_s": "1", "git_commit": "x", "settings": keys.get(key, key),
                "run_dir": "r"}

    for r in (row("fixmatch", 0, "0.40", key="fixmatch"), row("fixmatch", 1, "0.38", key="fixmatch"),
              row("leaf_fixmatch", 0, "0.41"), row("fixmatch", 0, "0.10", iterations=600, key="fixmatch"),
              row("leaf_fixmatch", 0, "0.20", key="other-flags")):  # run with other flags: left out
        compare.append_row(tmp_path / "grid.csv", r)
    for r in (row("leaf_fixmatch", 0, "0.43", key="faithful"), row("leaf_fixmatch", 1, "0.37", key="faithful")):
        compare.append_row(tmp_path / "study_faithful.csv", r)
    table = study.table(opts)
    assert "| fixmatch (the host) | | 0,1 | 39.00 | 30.00 | | | | |" in table
    assert "| default | `(none)` | 0 | 41.00 | 30.00 | +1.00 | +1.00 | +1.00 | - |" in table
    # +3 and -1: mean +1, t(0.95, 1) = 6.314 x stdev 2.828 / sqrt 2 = 12.63
    assert "| faithful | `--leaf_faithful true` | 0,1 | 40.00 | 30.00 | +3.00 / -1.00 | +1.00 | -1.00 | [-11.63, +13.63] |" \
        in table
    assert "(1 cell(s) at these iterations and seeds ran with other protocol flags" in table
    assert "scale_4" not in table  # no cells yet: no row
    # the same cells paired with the shipped default instead of the host: faithful - default at seed 0
    versus = study.table(study_opts(tmp_path, versus="default"))
    assert "| variant | flags | seeds | top-1 (%) | balanced (%) | vs default, per seed (points)" in versus
    assert "| default | `(none)` | 0 | 41.00 | 30.00 | - | - | - | - |" in versus
    assert "| faithful | `--leaf_faithful true` | 0,1 | 40.00 | 30.00 | +2.00 | +2.00 | +2.00 | - |" in versus


def test_study_of_another_host_reads_its_own_csv_and_the_tail_score(tmp_path):
    study = load_study()
    compare = study.compare
    opts = study_opts(tmp_path, host="flexmatch", protocol="fer2013", num_train_iter=None, baseline=None,
                      variants=["default", "min_pos_2"], seeds=[0, 1])
    assert study.iterations(opts) == 6000 and study.csv_name(opts, "default") == "fer2013_v2"
    assert study.csv_name(opts, "min_pos_2") == "study_flexmatch_min_pos_2"
    assert "--algorithms leaf_flexmatch" in " ".join(study.grid_argv(opts, "min_pos_2"))

    def row(alg, seed, tail, key):
        return {"algorithm": alg, "seed": seed, "labels": 175, "iterations": 6000, "top1": "0.5",
                "balanced_acc": "0.5", "wall_time_s": "1", "git_commit": "x", "settings": key, "run_dir": "r",
                "top1_tail": tail, "balanced_tail": "0.40"}

    host_key, leaf_key = study.settings(opts, "default", "flexmatch"), study.settings(opts, "default")
    for r in (row("flexmatch", 0, "0.40", host_key), row("flexmatch", 1, "0.42", host_key),
              row("leaf_flexmatch", 0, "0.43", leaf_key)):
        compare.append_row(tmp_path / "fer2013_v2.csv", r)
    compare.append_row(tmp_path / "study_flexmatch_min_pos_2.csv",
                       row("leaf_flexmatch", 1, "0.41", study.settings(opts, "min_pos_2")))
    table = study.table(opts)
    assert "| variant | flags | seeds | tail top-1 (%) | tail balanced (%) | vs flexmatch, per seed" in table
    assert "| default | `(none)` | 0 | 43.00 | 40.00 | +3.00 | +3.00 | +3.00 | - |" in table
    assert "| min_pos_2 | `--leaf_min_pos 2` | 1 | 41.00 | 40.00 | -1.00 | -1.00 | -1.00 | - |" in table


def test_study_ablation_prints_each_host_paired_with_its_own_cells(tmp_path, capsys):
    study = load_study()
    compare = study.compare
    args = ["--ablation", "--table-only", "--seeds", "0", "--results_dir", str(tmp_path), "--pretrain_path", "",
            "--threads", "1"]
    for host, (base, leaf, no_category) in {"fixmatch": ("0.40", "0.41", "0.44"),
                                             "freematch": ("0.38", "0.40", "0.37")}.items():
        opts = study_opts(tmp_path, host=host, protocol="fer2013", num_train_iter=None, baseline=None, seeds=[0])
        learned = host != "fixmatch"  # leaf_fixmatch's ablation ran at the fixed scale; the others' learn it
        for alg, tail, name in ((host, base, "default"), (f"leaf_{host}", leaf, "learn_scale" if learned else "default"),
                                (f"leaf_{host}", no_category, "ls_no_category" if learned else "no_category")):
            row = {"algorithm": alg, "seed": 0, "labels": 175, "iterations": 6000, "top1": tail, "balanced_acc": "0.3",
                   "top1_tail": tail, "balanced_tail": "0.30", "wall_time_s": "1", "git_commit": "x", "run_dir": "r",
                   "settings": study.settings(opts, name, alg)}
            compare.append_row(tmp_path / f"{study.csv_name(opts, name)}.csv", row)
    assert study.main(args) == 0
    out = capsys.readouterr().out
    fix, flex, free = (out.index(f"### leaf_{h}") for h in ("fixmatch", "flexmatch", "freematch"))
    assert fix < flex < free
    assert "| fixmatch (the host) | | 0 | 40.00 | 30.00 | | | | |" in out[fix:flex]
    assert "| default | `(none)` | 0 | 41.00 | 30.00 | +1.00 | +1.00 | +1.00 | - |" in out[fix:flex]
    assert "| no_category | `--leaf_category false --leaf_lambda_c 0` | 0 | 44.00 | 30.00 | +4.00 |" in out[fix:flex]
    # a host that learns the head's scale by default has it spelled out, so old cells never count
    assert "| learn_scale | `--leaf_learn_scale true` | 0 | 40.00 | 30.00 | +2.00 |" in out[free:]
    no_category = "| ls_no_category | `--leaf_learn_scale true --leaf_category false --leaf_lambda_c 0` | 0 |"
    assert f"{no_category} 37.00 | 30.00 | -1.00 |" in out[free:]
    assert "| learn_scale |" not in out[flex:free] and "(the host)" not in out[flex:free]  # no cells: no rows
    # leaf_fixmatch's ablation ran before it learned the scale: it stays at the fixed scale and says so
    assert study.ablation("flexmatch")[0] == "learn_scale" and study.ablation("fixmatch")[0] == "default"
    assert "### leaf_fixmatch (at the fixed head scale, its default when the ablation ran)" in out
    # what each level buys: all levels minus that level off, paired by seed
    assert "| what it buys | the variant without it | seeds | default - variant, per seed (tail top-1 points) |" \
        in out[fix:flex]
    assert "| the category level and the two-view term | no_category | 0 | -3.00 | -3.00 | - |" in out[fix:flex]
    assert "| the category level and the two-view term | ls_no_category | 0 | +3.00 | +3.00 | - |" in out[free:]
    assert "what it buys" not in out[flex:free]  # no level-off cells: no table


def test_study_headline_puts_each_leaf_host_at_its_shipped_default(tmp_path, capsys):
    """Every leaf_<host> learns the head's scale. The FER2013 grid ran all three at the fixed scale,
    so --headline takes their learn_scale cells; the FERPlus grid ran leaf_flexmatch at the learned
    scale already (its default then) and leaf_fixmatch at the fixed one: only leaf_fixmatch's come
    from the study there."""
    study = load_study()
    compare = study.compare

    def add(protocol, host, alg, seed, tail, name):
        o = study_opts(tmp_path, host=host, protocol=protocol, num_train_iter=None, baseline=None, seeds=[0, 1])
        compare.append_row(tmp_path / f"{study.csv_name(o, name)}.csv", {
            "algorithm": alg, "seed": seed, "labels": 175, "iterations": 6000, "top1": tail, "balanced_acc": "0.3",
            "top1_tail": tail, "balanced_tail": "0.30", "wall_time_s": "1", "git_commit": "x", "run_dir": "r",
            "settings": study.settings(o, name, alg)})

    for protocol in ("fer2013", "ferplus"):
        for seed, (host, grid_leaf, learned) in enumerate([("0.40", "0.30", "0.45"), ("0.42", "0.31", "0.43")]):
            for h in ("fixmatch", "flexmatch"):
                add(protocol, h, h, seed, host, "default")
                add(protocol, h, f"leaf_{h}", seed, grid_leaf, "default")
                add(protocol, h, f"leaf_{h}", seed, learned, "learn_scale")
        add(protocol, "flexmatch", "leaf_flexmatch", 2, "0.99", "learn_scale")  # a seed not asked for
    assert study.main(["--headline", "--seeds", "0", "1", "--results_dir", str(tmp_path), "--pretrain_path", ""]) == 0
    out = capsys.readouterr().out
    assert "| leaf_fixmatch - fixmatch | 0: +5.00, 1: +1.00 | +3.00 | +1.00 |" in out
    assert "| leaf_flexmatch - flexmatch | 0: +5.00, 1: +1.00 | +3.00 | +1.00 |" in out
    assert "| leaf_flexmatch | 0,1 | 44.00 +- 1.41 |" in out and "99.00" not in out
    assert "(rows from fer2013_v2.csv; leaf_fixmatch: study_learn_scale.csv; " \
           "leaf_flexmatch: study_flexmatch_learn_scale.csv; leaf_freematch: study_freematch_learn_scale.csv)" in out
    assert study.main(["--headline", "--protocol", "ferplus", "--seeds", "0", "1", "--results_dir", str(tmp_path),
                       "--pretrain_path", ""]) == 0
    out = capsys.readouterr().out
    assert "| leaf_fixmatch - fixmatch | 0: +5.00, 1: +1.00 | +3.00 | +1.00 |" in out
    assert "| leaf_flexmatch - flexmatch | 0: -10.00, 1: -11.00 | -10.50 | -11.00 |" in out  # the grid's own
    assert "(rows from ferplus.csv; leaf_fixmatch: study_learn_scale.csv)" in out


def test_late_fall_table_reads_each_curve_against_its_tail():
    rows = [{"algorithm": "fixmatch", "seed": s, "settings": "k", "top1_tail": t} for s, t in ((1, "0.40"), (0, "0.38"))]
    rows.append({"algorithm": "supervised", "seed": 0, "settings": "k", "top1_tail": ""})  # no tail: left out
    curves = {("fixmatch", 0, "k"): {"eval": [[500, 0.30], [1000, 0.42], [1500, 0.38]]},
              ("fixmatch", 1, "k"): {"eval": [[500, 0.35], [1000, 0.39], [1500, 0.41]]},
              ("supervised", 0, "k"): {"eval": [[500, 0.30]]}}
    table = grid_tables.late_fall_table(rows, curves, ["fixmatch", "supervised"])
    # seed 0: highest 42 at 1000, 42 - 38 = 4; seed 1: highest 41 at 1500, 41 - 40 = 1
    assert "| fixmatch | 2 | 41.50 | 1250 | 2.50 | 4.00 / 1.00 |" in table
    assert "supervised" not in table
    assert grid_tables.late_fall_table(rows, {}, ["fixmatch"]) == ""


def test_paired_peak_table_splits_the_tail_difference_by_hand():
    def row(alg, seed, tail):
        return {"algorithm": alg, "seed": seed, "settings": "k", "top1_tail": tail}

    rows = [row("fixmatch", 0, "0.38"), row("leaf_fixmatch", 0, "0.42"), row("fixmatch", 1, "0.39"),
            row("leaf_fixmatch", 1, "0.39"), row("leaf_flexmatch", 0, "0.50")]  # flexmatch: no host cell, no row
    curves = {("fixmatch", 0, "k"): {"eval": [[500, 0.30], [1000, 0.42], [1500, 0.38]]},
              ("leaf_fixmatch", 0, "k"): {"eval": [[500, 0.31], [1000, 0.43], [1500, 0.42]]},
              ("fixmatch", 1, "k"): {"eval": [[500, 0.35], [1000, 0.40]]},
              ("leaf_fixmatch", 1, "k"): {"eval": [[500, 0.36], [1000, 0.39]]},
              ("leaf_flexmatch", 0, "k"): {"eval": [[500, 0.50]]}}
    table = grid_tables.paired_peak_table(rows, curves)
    # highest: 43 - 42 = +1, 39 - 40 = -1; falls: host 4 and 1, LEAF 1 and 0, so less by 3 and 1;
    # tail: +4 and 0 (= highest + falls less). Two seeds: t(0.95, 1) = 6.313752 times sd / sqrt(2).
    half = 6.313752 * statistics.stdev([1.0, -1.0]) / 2 ** 0.5
    tail_half = 6.313752 * statistics.stdev([4.0, 0.0]) / 2 ** 0.5
    assert (f"| leaf_fixmatch - fixmatch | 0,1 | +0.00 [{-half:+.2f}, {half:+.2f}] | "
            f"+2.00 [{2 - half:+.2f}, {2 + half:+.2f}] | +2.00 [{2 - tail_half:+.2f}, {2 + tail_half:+.2f}] |") in table
    assert "flexmatch" not in table
    assert grid_tables.paired_peak_table(rows, {}) == ""


def test_settings_key_does_not_depend_on_where_the_checkout_is():
    compare = load_compare()
    argv = compare.cell_argv(compare.build_parser().parse_args(["--name", "x"]), "fixmatch", 0)
    assert argv[argv.index("--data_dir") + 1] == str(REPO.parent / "shared" / "data" / "fer2013" / "fer2013_dev.npz")
    key = compare.settings_key(argv)
    compare.REPO = compare.Path("/elsewhere/leaf-plugin")
    moved = [a.replace(str(REPO.parent), "/elsewhere") for a in argv]
    assert moved != argv and compare.settings_key(moved) == key


def test_tail_headline_and_paired_interval_by_hand():
    rows = []
    for seed, (host, leaf) in enumerate([(0.40, 0.43), (0.42, 0.43), (0.41, 0.45)]):
        rows.append({"algorithm": "fixmatch", "seed": seed, "top1": "0.30", "balanced_acc": "0.3",
                     "top1_tail": str(host), "balanced_tail": "0.20", "wall_time_s": "10"})
        rows.append({"algorithm": "leaf_fixmatch", "seed": seed, "top1": "0.31", "balanced_acc": "0.3",
                     "top1_tail": str(leaf), "balanced_tail": "0.25", "wall_time_s": "20"})
    table = grid_tables.summarise(rows, ["fixmatch", "leaf_fixmatch"])
    std = 100 * statistics.stdev([0.40, 0.42, 0.41])
    assert f"| fixmatch | 0,1,2 | 41.00 +- {std:.2f} | 30.00 +- 0.00 | 20.00 +- 0.00 | 10 |" in table
    # differences +3, +1, +4: mean 2.667, sd 1.528, t(0.95, 2) = 2.919986 -> half width 2.575
    half = 2.919986 * statistics.stdev([3.0, 1.0, 4.0]) / 3 ** 0.5
    mean = 8 / 3
    assert (f"| leaf_fixmatch - fixmatch | 0: +3.00, 1: +1.00, 2: +4.00 | +2.67 | +1.00 | "
            f"[{mean - half:+.2f}, {mean + half:+.2f}] |") in table
    assert "paired tail top-1 difference" in table
    rows[0]["top1_tail"] = ""  # one row without a tail score (an older cell): final scores for all
    assert "paired top-1 difference" in grid_tables.summarise(rows, ["fixmatch", "leaf_fixmatch"])


def test_references_run_at_their_own_seeds():
    compare = load_compare()
    opts = compare.build_parser().parse_args(["--name", "x"])
    assert compare.seeds_for(opts, "fixmatch") == [0, 1, 2, 3, 4]
    assert compare.seeds_for(opts, "fullysupervised") == [0, 1, 2]


def test_a_csv_begun_with_older_columns_is_widened_not_truncated(tmp_path):
    compare = load_compare()
    path = tmp_path / "old.csv"
    path.write_text(",".join(compare.FIELDS[:10]) + "\n" + ",".join(["0"] * 10) + "\n")
    row = {k: "1" for k in compare.FIELDS}
    compare.append_row(path, row)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(compare.FIELDS)  # the tail columns are added at the end
    assert lines[1] == ",".join(["0"] * 10 + [""] * (len(compare.FIELDS) - 10))
    assert lines[2] == ",".join(["1"] * len(compare.FIELDS))
    assert grid_tables.has_tail(grid_tables.read_rows(path)[1]) and not grid_tables.has_tail(grid_tables.read_rows(path)[0])
    assert not (tmp_path / "old.csv.tmp").exists()


def test_protocol_study_tables_by_hand(tmp_path, capsys):
    study = load_benchmark("probes/protocol_study")
    live = [[250 * i, a] for i, a in enumerate([0.30, 0.40, 0.36, 0.41, 0.42, 0.38, 0.43, 0.44], start=1)]
    ema = [[it, a + 0.01] for it, a in [[250, 0.30], [500, 0.40], [750, 0.41], [1000, 0.41], [1250, 0.42],
                                         [1500, 0.42], [1750, 0.43], [2000, 0.44]]]
    entry = {"algorithm": "fixmatch", "seed": 0, "settings": "s", "eval": live,
             "eval_bn": {"live": live, "ema": ema}, "diagnostics": {"pl_accuracy": [[1000, 0.5], [1600, 0.6],
                                                                                      [2000, 0.7]]}}
    path = tmp_path / "c.jsonl"
    path.write_text(study.json.dumps(entry) + "\n")
    assert study.dips([p for p in live]) == 2  # 0.40 -> 0.36 and 0.42 -> 0.38
    assert study.main(["--curves", str(path)]) == 0
    out = capsys.readouterr().out
    tail_live = 100 * statistics.mean([0.41, 0.42, 0.38, 0.43, 0.44])
    tail_ema = 100 * statistics.mean([0.42, 0.43, 0.43, 0.44, 0.45])
    assert f"| fixmatch | 0 | {tail_live:.2f}, 2 | {tail_ema:.2f}, 0 | nan, 0 |" in out
    # convergence under ema: the last 5 evaluations up to 1500 (3/4 of 2000) against the last 5
    at_q = 100 * statistics.mean([0.41, 0.42, 0.42, 0.43, 0.43])
    assert f"| fixmatch | 0 | {at_q:.2f} | {tail_ema:.2f} | {tail_ema - at_q:+.2f} |" in out
    assert "| fixmatch | 0 | - | 0.650 | - | - | - |" in out  # pl_accuracy over iterations after 1500
