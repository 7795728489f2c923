"""benchmarks/ambiguity.py: the grid's cached Valid probabilities against a FERPlus file's votes, by hand."""
from __future__ import annotations

import csv

import numpy as np

from conftest import load_benchmark

VOTES = np.array([[10, 0, 0, 0, 0, 0, 0, 0, 0, 0],   # unanimous neutral
                  [6, 4, 0, 0, 0, 0, 0, 0, 0, 0],    # 0.971 bits: neutral and happiness chosen
                  [4, 3, 3, 0, 0, 0, 0, 0, 0, 0]])   # 1.571 bits: three classes chosen
LEAF = np.array([[0.95, 0.02, 0.01, 0.01, 0.01, 0, 0, 0],   # n = 1, covers
                 [0.60, 0.25, 0.08, 0.04, 0.03, 0, 0, 0],   # n = 2, covers
                 [0.50, 0.20, 0.15, 0.10, 0.05, 0, 0, 0]])  # n = 3 {0, 1, 2}: covers
HOST = np.array([[0.97, 0.01, 0.01, 0.01, 0, 0, 0, 0],      # own n = 1
                 [0.55, 0.02, 0.40, 0.02, 0.01, 0, 0, 0],   # top-2 {0, 2}: misses happiness; own n = 1
                 [0.45, 0.44, 0.05, 0.03, 0.03, 0, 0, 0]])  # top-3 {0, 1, 2}: covers; own n = 2: does not


def test_tables_from_cached_probabilities(tmp_path, capsys):
    script = load_benchmark("ambiguity", "ambiguity_bench")
    data = tmp_path / "fp.npz"
    faces = np.zeros((3, 48, 48), np.uint8)
    np.savez(data, x_train=faces, y_train=np.zeros(3, np.int64), x_val=faces, y_val=np.array([0, 0, 0]),
             votes_train=VOTES.astype(np.int32), votes_val=VOTES.astype(np.int32),
             class_names=np.array(["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                   "contempt"]))
    # the FERPlus grid ran leaf_fixmatch at the fixed scale: its model at the shipped default (the
    # learned scale) is the learn_scale study's, and the grid's own leaf_fixmatch cells are left out
    study = load_benchmark("study")
    opts = study.grid_opts("ferplus", tmp_path, [0, 1])
    key = {"fixmatch": study.settings(opts, "default", "fixmatch"),
           "leaf_fixmatch": study.settings(opts, "learn_scale"), "fixed": study.settings(opts, "default")}
    probs = {"fixmatch": HOST, "leaf_fixmatch": LEAF, "fixed": HOST}

    def write(name, cells):
        rows = [{"algorithm": alg.replace("fixed", "leaf_fixmatch"), "seed": str(seed), "iterations": "6000",
                 "settings": key[alg], "run_dir": str(tmp_path / "gone")} for alg, seed in cells]
        with open(tmp_path / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return {f"{r['algorithm']}_s{r['seed']}_{r['settings']}": probs[alg].astype(np.float16)
                for r, (alg, _) in zip(rows, cells)}

    cached = write("ferplus", [(alg, seed) for seed in (0, 1) for alg in ("fixmatch", "fixed")])
    cached.update(write("study_learn_scale", [("leaf_fixmatch", seed) for seed in (0, 1)]))
    np.savez(tmp_path / "ferplus_valid_probs.npz", **cached)
    rc = script.main(["--name", "ferplus", "--results_dir", str(tmp_path), "--out_dir", str(tmp_path), "--data", str(data),
                      "--seeds", "0", "1", "--png"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "### leaf_fixmatch against fixmatch (seeds 0,1; means over seeds)" in out
    assert "| 0 (unanimous) | 1 | 0.00 | 1.00 | 100.0 | 100.0 | 100.0 | 1.00 | 100.0 |" in out
    assert "| (0.5, 1] | 1 | 0.97 | 2.00 | 100.0 | 0.0 | 0.0 | 1.00 | 0.0 |" in out
    assert "| > 1.5 | 1 | 1.57 | 3.00 | 100.0 | 0.0 | 100.0 | 2.00 | 0.0 |" in out
    assert "| all | 3 | 0.85 | 2.00 | 100.0 | 33.3 | 66.7 | 1.33 | 33.3 |" in out
    assert "per seed: +1.000 / +1.000" in out and (tmp_path / "ferplus_ambiguity.png").is_file()
    rc = script.main(["--name", "g", "--results_dir", str(tmp_path), "--data", str(data)])
    assert rc == 2 and "'g' is no protocol's headline grid; expected one of" in capsys.readouterr().err
