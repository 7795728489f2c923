"""Does LEAF beat its host, and by how much?  A resumable grid of ``semilearn train`` runs.

The tables it prints are :mod:`grid_tables`' (this script runs the grid and keeps its results).

Every cell (algorithm x seed) is one ``semilearn train`` process (the same code path as the
command), its result appended to ``benchmarks/results/<name>.csv`` as soon as it finishes; a
cell already in the CSV with the same settings (its ``semilearn train`` flags) is not run again,
so an interrupted grid loses at most the cell in progress. A changed default of the code is not
part of a cell's settings: run a grid under changed defaults with a new ``--name``.  At the end
(or with ``--table-only``) it prints a markdown table (mean +- std of top-1 and balanced
accuracy per algorithm, and per host the paired per-seed difference leaf_host - host), a
per-run table of test top-1 at each evaluation with the late mask ratio and positive-set size,
and writes a bar chart and a learning-curve PNG.
Each finished cell's curve is also kept in ``results/<name>_curves.jsonl`` (committed with the
CSV; run folders are not), so tables and plots can be remade from a fresh clone.

    # the CPU-scale FER2013 protocol, from the self-supervised checkpoint
    python benchmarks/compare.py --name fer2013_simclr --protocol fer2013 \
        --pretrain_path benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth --seeds 0 1 2
    # the same protocol on FERPlus, 800 labels (ferplus_200: 200), decided on FERPlus Valid
    python benchmarks/compare.py --name ferplus --protocol ferplus \
        --pretrain_path benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth --seeds 0 1 2 3 4
    # a smoke grid on the embedded default
    python benchmarks/compare.py --name smoke --protocol digits --algorithms fixmatch leaf_fixmatch \
        --seeds 0 --num_train_iter 20
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_tables import (HOSTS, LATE_ITERS, cell_key, curves_table, late_fall_table, plot,  # noqa: E402
                    read_curves, read_rows, summarise)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_GRID = [*HOSTS, *(f"leaf_{h}" for h in HOSTS), "leaf", "supervised", "fullysupervised"]
FIELDS = ["algorithm", "seed", "labels", "iterations", "top1", "balanced_acc", "wall_time_s", "git_commit",
          "settings", "run_dir", "top1_tail", "balanced_tail"]
REFERENCES = ("supervised", "fullysupervised", "leaf")  # run at --reference_seeds; the host pairs at --seeds
DIAGNOSTICS = ("train/pl_mask_ratio", "train/pl_accuracy", "train/pl_all_accuracy", "train/leaf_pos_hit",
               "train/leaf_pos_size_rejected")

# the CPU-scale FER2013 protocol (see benchmarks/RESULTS.md): the usb_configs/*_fer2013_175_0.yaml CPU configs
# (175 labels, 48 px, leaf_cnn4, batch 16 + 32, SGD 0.03, bias-corrected EMA 0.999 with its BN statistics
# averaged too, 6000 iterations evaluated every 500 and every 250 in the last fifth, bf16 + channels-last + compile)
PROTOCOLS = {
    "fer2013": ["--dataset", "fer2013",
                "--data_dir", str(REPO.parent / "shared" / "data" / "fer2013" / "fer2013_dev.npz"),
                "--net", "leaf_cnn4", "--img_size", "48", "--aug_recipe", "small", "--num_labels", "175",
                "--batch_size", "16", "--uratio", "2", "--eval_batch_size", "512", "--num_workers", "0",
                "--lr", "0.03", "--ema_m", "0.999", "--ema_debias", "true", "--ema_bn", "ema",
                "--num_eval_iter_tail", "250", "--amp", "true", "--channels_last", "true", "--compile", "true"],
    # the protocol of the grids before it (results/fer2013_simclr.csv): 2000 iterations, live BN, fp32
    "fer2013_v1": ["--dataset", "fer2013",
                   "--data_dir", str(REPO.parent / "shared" / "data" / "fer2013" / "fer2013_dev.npz"),
                   "--net", "leaf_cnn4", "--img_size", "48", "--aug_recipe", "small", "--num_labels", "175",
                   "--batch_size", "16", "--uratio", "2", "--eval_batch_size", "512", "--num_workers", "0",
                   "--lr", "0.03", "--ema_m", "0.999", "--ema_debias", "true"],
    # FERPlus (issue 31): the fer2013 protocol's settings on FERPlus Train (ten votes per face, the
    # most-voted label), 100 labels per class, decided on FERPlus Valid; ferplus_200 has 25 per class
    "ferplus": ["--dataset", "ferplus", "--ferplus_label", "plurality",
                "--data_dir", str(REPO.parent / "shared" / "data" / "ferplus" / "ferplus_dev.npz"),
                "--net", "leaf_cnn4", "--img_size", "48", "--aug_recipe", "small", "--num_labels", "800",
                "--batch_size", "16", "--uratio", "2", "--eval_batch_size", "512", "--num_workers", "0",
                "--lr", "0.03", "--ema_m", "0.999", "--ema_debias", "true", "--ema_bn", "ema",
                "--num_eval_iter_tail", "250", "--amp", "true", "--channels_last", "true", "--compile", "true"],
    "digits": ["--dataset", "digits", "--net", "leaf_cnn4", "--img_size", "32", "--num_labels", "40",
               "--batch_size", "16", "--uratio", "2", "--num_workers", "0"],
}



def with_value(argv: List[str], flag: str, value: str) -> List[str]:
    """``argv`` with the value after ``flag`` replaced by ``value``."""
    i = argv.index(flag)
    return [*argv[:i + 1], value, *argv[i + 2:]]


PROTOCOLS["ferplus_200"] = with_value(PROTOCOLS["ferplus"], "--num_labels", "200")

# per algorithm, on top of the protocol: the standalone ``leaf`` keeps its released recipe
# (usb_configs/leaf_fer2013_175_0.yaml: AdamW 5e-4, Ada-CM thresholds refreshed over 5 epochs)
RECIPES = {
    "fer2013": {"leaf": ["--optim", "AdamW", "--lr", "0.0005", "--weight_decay", "0.0001", "--epoch", "5"]},
    "fer2013_v1": {"leaf": ["--optim", "AdamW", "--lr", "0.0005", "--weight_decay", "0.0001", "--epoch", "5"]},
    "digits": {},
}
for _name in ("ferplus", "ferplus_200"):
    RECIPES[_name] = RECIPES["fer2013"]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def settings_key(argv: List[str]) -> str:
    """A short hash of everything that defines a cell besides algorithm and seed. Paths beside the
    checkout (``../shared/...``) are hashed as relative ones, so a clone anywhere finds the cells."""
    beside = str(REPO.parent) + os.sep
    portable = [("../" + a[len(beside):]) if a.startswith(beside) else a for a in argv]
    return hashlib.sha1(" ".join(portable).encode()).hexdigest()[:10]


def cell_settings(opts, algorithm: str, seed: int) -> str:
    """The settings key of one cell of the grid ``opts`` describes."""
    return settings_key(cell_argv(opts, algorithm, seed))


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to the CSV.  A CSV begun by an older compare.py is first rewritten
    (atomically) under its header widened by the columns it lacks, its old rows blank there, so
    that a new column such as the tail score is never dropped from the rows that have it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = None
    if path.exists():
        with open(path, newline="") as f:
            header = next(csv.reader(f), None)
    missing = [f for f in FIELDS if header is not None and f not in header]
    if missing:
        widened = header + missing
        old_rows = read_rows(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=widened, restval="")
            writer.writeheader()
            writer.writerows(old_rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        header = widened
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or FIELDS, extrasaction="ignore")
        if header is None:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def run_summary(run_dir: Path, late: int = LATE_ITERS) -> Optional[dict]:
    """A finished run's test top-1 at each evaluation ``[[it, top1], ...]``, and the means over
    its last ``late`` iterations of the host mask's acceptance rate and (LEAF) the positive-set
    size; None when the run folder has no ``metrics.jsonl``."""
    from leaf_plugin.history import read_history
    from leaf_plugin.history import MASK_KEYS  # the host mask's acceptance rate as each algorithm logs it

    history = read_history(str(run_dir))
    if not history:
        return None
    end = max(r["it"] for r in history)
    late_rows = [r for r in history if r["it"] > end - late]

    def late_mean(keys) -> Optional[float]:
        for key in keys:
            values = [r[key] for r in late_rows if key in r]
            if values:
                return statistics.mean(values)
        return None

    summary = {"eval": [[r["it"], r["eval/top-1-acc"]] for r in history if "eval/top-1-acc" in r],
               "mask_ratio": late_mean(MASK_KEYS), "pos_size": late_mean(["train/leaf_pos_size"])}
    # the pseudo-label diagnostics, when the run logged them: curves of quantity and quality
    for key in DIAGNOSTICS:
        points = [[r["it"], r[key]] for r in history if key in r]
        if points:
            summary.setdefault("diagnostics", {})[key.split("/")[-1]] = points
    for mode in ("live", "ema", "recompute"):  # --ema_bn_compare
        points = [[r["it"], r[f"eval_bn_{mode}/top-1-acc"]] for r in history if f"eval_bn_{mode}/top-1-acc" in r]
        if points:
            summary.setdefault("eval_bn", {})[mode] = points
    return summary


def curves_path(opts) -> Path:
    return Path(opts.results_dir) / f"{opts.name}_curves.jsonl"


def keep_curve(path: Path, row: dict, curves: Dict[tuple, dict]) -> None:
    """Add ``row``'s run summary to the curves file, when it is not there and its run folder is."""
    if cell_key(row) in curves:
        return
    summary = run_summary(Path(row["run_dir"]))
    if summary is None:
        return
    entry = {"algorithm": row["algorithm"], "seed": int(row["seed"]), "settings": row["settings"], **summary}
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")
    curves[cell_key(entry)] = entry


def seeds_for(opts, algorithm: str) -> List[int]:
    """The seeds ``algorithm`` runs at: the references' own, the host pairs' --seeds."""
    return list(opts.reference_seeds if algorithm in REFERENCES else opts.seeds)


def cell_argv(opts, algorithm: str, seed: int) -> List[str]:
    argv = list(PROTOCOLS[opts.protocol]) + RECIPES[opts.protocol].get(algorithm, [])
    argv += ["--num_train_iter", str(opts.num_train_iter), "--num_eval_iter", str(opts.num_eval_iter),
             "--num_log_iter", str(opts.num_log_iter)]
    if opts.pretrain_path:
        argv += ["--pretrain_path", opts.pretrain_path]
    if algorithm == "fullysupervised":
        argv += ["--num_labels", "-1"]  # every training image labeled: the upper bound
    return argv + list(opts.extra)


def run_cell(opts, algorithm: str, seed: int, settings: str) -> dict:
    run_name = f"{opts.name}_{algorithm}_s{seed}_{settings}"
    argv = ["train", "--algorithm", algorithm, "--seed", str(seed), *cell_argv(opts, algorithm, seed),
            "--device", opts.device, "--threads", str(opts.threads), "--save_dir", str(opts.runs_dir),
            "--save_name", run_name, "--overwrite", "--progress", "false", "--report", "false",
            "--use_tensorboard", "false"]
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "leaf_plugin.cli", *argv], cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{algorithm} seed {seed} failed (exit {proc.returncode}): "
                           f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
    result = json.loads((Path(opts.runs_dir) / run_name / "results.json").read_text())
    return {"algorithm": algorithm, "seed": seed, "labels": result["num_labels"], "iterations": result["iterations"],
            "top1": f"{result['top1']:.6f}", "balanced_acc": f"{result['balanced_acc']:.6f}",
            "top1_tail": f"{result.get('top1_tail', float('nan')):.6f}",
            "balanced_tail": f"{result.get('balanced_tail', float('nan')):.6f}",
            "wall_time_s": f"{time.time() - started:.1f}", "git_commit": git_commit(), "settings": settings,
            "run_dir": str(Path(opts.runs_dir) / run_name)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="results/<name>.csv")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="fer2013")
    p.add_argument("--algorithms", nargs="+", default=DEFAULT_GRID)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="seeds of the host pairs")
    p.add_argument("--reference_seeds", nargs="+", type=int, default=[0, 1, 2],
                   help=f"seeds of the references ({', '.join(REFERENCES)})")
    p.add_argument("--num_train_iter", type=int, default=6000, help="6000: the fer2013 protocol; 2000: fer2013_v1")
    p.add_argument("--num_eval_iter", type=int, default=500)
    p.add_argument("--num_log_iter", type=int, default=50)
    p.add_argument("--pretrain_path", default="")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per run (0: one per core); not part of a cell's settings")
    p.add_argument("--results_dir", default=str(HERE / "results"))
    p.add_argument("--runs_dir", default=str(REPO / "runs" / "compare"))
    p.add_argument("--table-only", dest="table_only", action="store_true")
    p.add_argument("--no_plots", action="store_true", help="print the table only, no PNGs")
    p.add_argument("extra", nargs="*", help="more `semilearn train` flags for every cell, after --")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    opts = build_parser().parse_args(argv)
    csv_path = Path(opts.results_dir) / f"{opts.name}.csv"
    curves = read_curves(curves_path(opts))
    failures = []
    if not opts.table_only:
        for seed in sorted(set(opts.seeds) | set(opts.reference_seeds)):
            for alg in opts.algorithms:
                if seed not in seeds_for(opts, alg):
                    continue
                settings = cell_settings(opts, alg, seed)
                done = {(r["algorithm"], int(r["seed"]), r["settings"]) for r in read_rows(csv_path)}
                if (alg, seed, settings) in done:  # read before each cell: another grid may share the CSV
                    print(f"[skip] {alg} seed {seed}: already in {csv_path.name}", flush=True)
                    continue
                print(f"[run ] {alg} seed {seed} ...", flush=True)
                try:
                    row = run_cell(opts, alg, seed, settings)
                except RuntimeError as exc:
                    failures.append(str(exc))
                    print(f"[fail] {exc}", flush=True)
                    continue
                append_row(csv_path, row)
                keep_curve(curves_path(opts), row, curves)
                print(f"[done] {alg} seed {seed}: top-1 {100 * float(row['top1']):.2f} %, balanced "
                      f"{100 * float(row['balanced_acc']):.2f} %, {row['wall_time_s']} s", flush=True)
    wanted = {cell_settings(opts, a, s) for a in opts.algorithms for s in seeds_for(opts, a)}
    rows = [r for r in read_rows(csv_path) if r["settings"] in wanted and r["algorithm"] in opts.algorithms
            and int(r["seed"]) in seeds_for(opts, r["algorithm"])]
    for row in rows:  # cells run by an older compare.py: their curves, while their run folders exist
        keep_curve(curves_path(opts), row, curves)
    print()
    print(summarise(rows, opts.algorithms))
    for table in (curves_table(rows, curves, opts.algorithms), late_fall_table(rows, curves, opts.algorithms)):
        if table:
            print()
            print(table)
    for path in [] if opts.no_plots else plot(rows, opts.algorithms, Path(opts.results_dir) / opts.name, curves):
        print(f"wrote {path}")
    if failures:
        print(f"{len(failures)} cell(s) failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

