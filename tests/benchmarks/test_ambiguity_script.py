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
    rows = [{"algorithm": alg, "seed": str(seed), "settings": "k", "run_dir": str(tmp_path / "gone")}
            for seed in (0, 1) for alg in ("fixmatch", "leaf_fixmatch")]
    with open(tmp_path / "g.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    np.savez(tmp_path / "g_valid_probs.npz", **{f"{r['algorithm']}_s{r['seed']}_k": (LEAF if "leaf" in r["algorithm"]
                                                                                   else HOST).astype(np.float16)
                                              for r in rows})
    rc = script.main(["--name", "g", "--results_dir", str(tmp_path), "--out_dir", str(tmp_path), "--data", str(data),
                      "--seeds", "0", "1", "--png"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "### leaf_fixmatch against fixmatch (seeds 0,1; means over seeds)" in out
    assert "| 0 (unanimous) | 1 | 0.00 | 1.00 | 100.0 | 100.0 | 100.0 | 1.00 | 100.0 |" in out
    assert "| (0.5, 1] | 1 | 0.97 | 2.00 | 100.0 | 0.0 | 0.0 | 1.00 | 0.0 |" in out
    assert "| > 1.5 | 1 | 1.57 | 3.00 | 100.0 | 0.0 | 100.0 | 2.00 | 0.0 |" in out
    assert "| all | 3 | 0.85 | 2.00 | 100.0 | 33.3 | 66.7 | 1.33 | 33.3 |" in out
    assert "per seed: +1.000 / +1.000" in out and (tmp_path / "g_ambiguity.png").is_file()
