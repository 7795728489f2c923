"""benchmarks/pseudo_labels.py: quantity and quality tables by hand, the PNG, and refusals."""
from __future__ import annotations

import json

from conftest import load_benchmark


def load_script():
    return load_benchmark("pseudo_labels")


def entry(algorithm, seed, mask, acc, hit=None, size=None):
    its = [100, 200, 300, 400]
    diag = {"pl_mask_ratio": [[it, m] for it, m in zip(its, mask)],
            "pl_accuracy": [[it, a] for it, a in zip(its, acc)]}
    if hit:
        diag["leaf_pos_hit"] = [[it, h] for it, h in zip(its, hit)]
        diag["leaf_pos_size_rejected"] = [[it, s] for it, s in zip(its, size)]
    return {"algorithm": algorithm, "seed": seed, "settings": "s", "eval": [[400, 0.4]], "diagnostics": diag}


def test_tables_by_hand_and_png(tmp_path, capsys):
    pl = load_script()
    entries = [entry("fixmatch", 0, [0.1, 0.2, 0.4, 0.6], [0.9, 0.8, 0.5, 0.5]),
               entry("fixmatch", 1, [0.1, 0.2, 0.2, 0.4], [0.9, 0.8, 0.7, 0.5]),
               entry("leaf_fixmatch", 0, [0.0, 0.2, 0.3, 0.5], [None, 0.6, 0.4, 0.6], [0.5, 0.4, 0.3, 0.2],
                     [1.0, 1.5, 1.5, 2.0]),
               {"algorithm": "supervised", "seed": 0, "settings": "s", "eval": [[400, 0.3]]}]
    path = tmp_path / "g_curves.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert pl.main(["--curves", str(path), "--png"]) == 0
    out = capsys.readouterr().out
    # last quarter = windows after iteration 300 (0.75 x 400): only iteration 400
    assert "| fixmatch | 0 | 0.600 | 0.500 | 0.300 | - | - |" in out
    assert "| leaf_fixmatch | 0 | 0.500 | 0.600 | 0.300 | 0.200 | 2.000 |" in out
    # per host, seeds averaged: last quarter (0.6 + 0.4) / 2; whole run mean of each seed's 4 windows, then of seeds
    whole_mask = ((0.1 + 0.2 + 0.4 + 0.6) / 4 + (0.1 + 0.2 + 0.2 + 0.4) / 4) / 2
    whole_right = ((0.09 + 0.16 + 0.2 + 0.3) / 4 + (0.09 + 0.16 + 0.14 + 0.2) / 4) / 2
    assert f"| fixmatch | fixmatch | 2 | 0.500 / {whole_mask:.3f} | 0.500 / " in out
    assert f"| 0.250 / {whole_right:.3f} | - / - | - / - |" in out
    # leaf: the None accuracy window is skipped (nothing accepted there)
    assert "| fixmatch | leaf_fixmatch | 1 | 0.500 / 0.250 | 0.600 / 0.533 |" in out
    png = tmp_path / "g_pseudo_labels.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def study_key(tmp_path, grid, host, variant):
    """The settings key of ``study.py`` variant ``variant``'s ``leaf_<host>`` cells on the protocol
    whose headline grid is ``grid``."""
    study = load_benchmark("study")
    return study.settings(study.host_opts(study.grid_opts(grid, tmp_path, [0]), host), variant)


def with_settings(e, key):
    return {**e, "settings": key}


def test_leaf_variant_replaces_the_grids_leaf_runs(tmp_path, capsys):
    """The study's runs on the grid's protocol replace the grid's leaf_ runs; its runs on another
    protocol (another settings key, the same study file) never count."""
    pl = load_script()
    grid = [entry("flexmatch", 0, [1, 1, 1, 0.8], [0.5, 0.5, 0.5, 0.4]),
            entry("leaf_flexmatch", 0, [1, 1, 1, 1.0], [0.5, 0.5, 0.5, 0.1])]
    key = study_key(tmp_path, "ferplus", "flexmatch", "min_pos_2")
    runs = [with_settings(entry("leaf_flexmatch", 0, [1, 1, 1, 0.9], [0.5, 0.5, 0.5, 0.7]), key),
            with_settings(entry("leaf_flexmatch", 0, [1, 1, 1, 0.2], [0.5, 0.5, 0.5, 0.2]),
                          study_key(tmp_path, "fer2013_v2", "flexmatch", "min_pos_2"))]  # FER2013's
    assert runs[0]["settings"] != runs[1]["settings"]
    (tmp_path / "ferplus_curves.jsonl").write_text("".join(json.dumps(e) + "\n" for e in grid))
    (tmp_path / "study_flexmatch_min_pos_2_curves.jsonl").write_text("".join(json.dumps(e) + "\n" for e in runs))
    args = ["--name", "ferplus", "--results_dir", str(tmp_path)]
    assert pl.main([*args, "--leaf_variant", "min_pos_2", "--png"]) == 0
    out = capsys.readouterr().out
    assert "| leaf_flexmatch | 0 | 0.900 | 0.700 | 0.630 |" in out
    assert "| leaf_flexmatch | 0 | 1.000 |" not in out and "| leaf_flexmatch | 0 | 0.200 |" not in out
    assert (tmp_path / "ferplus_min_pos_2_pseudo_labels.png").exists()
    assert pl.main([*args, "--leaf_variant", "faithful"]) == 2  # a variant without runs here
    assert "no run of study.py variant 'faithful' on ferplus's protocol" in capsys.readouterr().err
    assert pl.main([*args, "--leaf_variant", "none"]) == 2
    assert "--leaf_variant 'none' is no study.py variant" in capsys.readouterr().err
    (tmp_path / "g_curves.jsonl").write_text("".join(json.dumps(e) + "\n" for e in grid))
    assert pl.main(["--name", "g", "--results_dir", str(tmp_path), "--leaf_variant", "min_pos_2"]) == 2
    assert "'g' is no protocol's headline grid; expected one of fer2013_v2" in capsys.readouterr().err


def test_shipped_variant_takes_each_hosts_default_runs(tmp_path, capsys):
    """On FERPlus the grid ran leaf_fixmatch at the fixed scale and the other hosts at the learned
    one (their default then): leaf_fixmatch's runs come from the learn_scale study, leaf_flexmatch's
    stay the grid's, and a FlexMatch learn_scale study run is not taken."""
    pl = load_script()
    grid = [entry("fixmatch", 0, [1, 1, 1, 0.8], [0.5, 0.5, 0.5, 0.4]),
            entry("leaf_fixmatch", 0, [1, 1, 1, 0.6], [0.5, 0.5, 0.5, 0.2]),
            entry("leaf_flexmatch", 0, [1, 1, 1, 1.0], [0.5, 0.5, 0.5, 0.1])]
    learned = [with_settings(entry("leaf_fixmatch", 0, [1, 1, 1, 0.3], [0.5, 0.5, 0.5, 0.3]),
                             study_key(tmp_path, "ferplus", "fixmatch", "learn_scale")),
               with_settings(entry("leaf_flexmatch", 0, [1, 1, 1, 0.9], [0.5, 0.5, 0.5, 0.7]),
                             study_key(tmp_path, "ferplus", "flexmatch", "learn_scale"))]
    (tmp_path / "ferplus_curves.jsonl").write_text("".join(json.dumps(e) + "\n" for e in grid))
    (tmp_path / "study_learn_scale_curves.jsonl").write_text(json.dumps(learned[0]) + "\n")
    (tmp_path / "study_flexmatch_learn_scale_curves.jsonl").write_text(json.dumps(learned[1]) + "\n")
    assert pl.main(["--name", "ferplus", "--results_dir", str(tmp_path), "--leaf_variant", "shipped"]) == 0
    out = capsys.readouterr().out
    assert "| leaf_fixmatch | 0 | 0.300 | 0.300 | 0.090 |" in out and "| leaf_flexmatch | 0 | 1.000 | 0.100 |" in out
    assert "| leaf_fixmatch | 0 | 0.600 |" not in out and "| leaf_flexmatch | 0 | 0.900 |" not in out


def test_paired_table_by_hand():
    pl = load_script()

    def run(alg, seed, mask, acc, evals):
        e = entry(alg, seed, [0.0, 0.0, 0.0, mask], [0.0, 0.0, 0.0, acc])
        e["eval"] = [[100 * i, v] for i, v in enumerate(evals)]
        return e

    # tail = mean of the last 5 evaluations: the first evaluation falls outside it
    entries = [run("fixmatch", 0, 0.5, 0.6, [0.9, 0.40, 0.40, 0.40, 0.40, 0.40]),
               run("leaf_fixmatch", 0, 0.4, 0.5, [0.0, 0.38, 0.38, 0.38, 0.38, 0.38]),
               run("fixmatch", 1, 0.5, 0.6, [0.40] * 5), run("leaf_fixmatch", 1, 0.6, 0.7, [0.41] * 5),
               run("flexmatch", 0, 0.9, 0.4, [0.40] * 5), run("leaf_flexmatch", 0, 1.0, 0.45, [0.43] * 5),
               run("freematch", 0, 0.8, 0.4, [0.40] * 5)]  # no LEAF run at this seed: no pair
    lines = pl.paired_table(entries)
    # right and accepted 0.4 x 0.5 - 0.5 x 0.6 = -0.10; tail 38 - 40 = -2
    assert "| fixmatch | 0 | -0.100 | -0.100 | -0.100 | -2.00 |" in lines
    assert "| fixmatch | 1 | +0.100 | +0.100 | +0.120 | +1.00 |" in lines
    assert "| flexmatch | 0 | +0.100 | +0.050 | +0.090 | +3.00 |" in lines
    assert not any(line.startswith("| freematch") for line in lines)
    # accepted right (-0.1, 0.1, 0.05) against top-1 (-2, 1, 3): r = 0.795
    assert lines[-1].startswith("Correlation over the 3 pairs") and "accepted right +0.80" in lines[-1]
    assert pl.paired_table(entries[:2])[-1] == "| fixmatch | 0 | -0.100 | -0.100 | -0.100 | -2.00 |"  # no r from one pair


def test_refusals(tmp_path, capsys):
    pl = load_script()
    assert pl.main(["--curves", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"algorithm": "supervised", "seed": 0, "eval": [[1, 0.1]]}) + "\n")
    assert pl.main(["--curves", str(path)]) == 2
    assert "no run in" in capsys.readouterr().err
