"""Ship a finished run as the model ``predict`` and ``serve`` use when none is given.

    python benchmarks/ship_model.py RUN_DIR [--name ferplus_leaf_fixmatch_s0]
        [--data_dir ../shared/data/ferplus/ferplus_dev.npz] [--split "FERPlus Valid ..."]

Writes into ``benchmarks/checkpoints/``:
- ``NAME.pth``: what loading needs and no more: the EMA weights (also as ``model``, stored once:
  ``semilearn eval`` reads both), the run's arguments and LEAF configuration, its iteration
  and averaged BN statistics; no optimizer, scheduler or RNG state;
- ``NAME.onnx`` and ``NAME.onnx.json``: its export (``semilearn export``, gate outputs included);
- ``NAME.json``: the sidecar: which run, how it was trained, the classes, and the test accuracy
  measured here by ``semilearn eval`` in fp32 (the command is written beside the numbers).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_DIR = HERE / "checkpoints"
KEEP = ("args", "leaf_config", "leaf_args", "it", "epoch", "ema_buffers")
# eval in fp32 on the CPU without compilation: what the shipped files compute
EVAL_FLAGS = ["--amp", "false", "--compile", "false", "--channels_last", "false", "--device", "cpu"]


def slim_checkpoint(source: Path, target: Path) -> dict:
    """Write the loading part of ``source`` to ``target``; returns the slim dict."""
    import torch

    from leaf_plugin.checkpoint import atomic_save, read_checkpoint

    full = read_checkpoint(str(source))
    ema = full["ema_model"]
    slim = {"model": ema, "ema_model": ema, **{k: full[k] for k in KEEP if k in full}}
    atomic_save(slim, str(target))
    torch.load(str(target), map_location="cpu", weights_only=False)  # reads back
    return slim


def semilearn(*argv: str) -> str:
    """stdout of ``semilearn ARGV`` run from the repository root (the command as the docs give it)."""
    done = subprocess.run([sys.executable, "-m", "leaf_plugin.cli", *argv], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"semilearn {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--name", default="ferplus_leaf_fixmatch_s0")
    p.add_argument("--data_dir", default="../shared/data/ferplus/ferplus_dev.npz",
                   help="the dataset, relative to the repository root")
    p.add_argument("--split", default="FERPlus Valid (FER2013 PublicTest, 3,396 faces): the test split semilearn "
                                      "eval reads from ferplus_dev.npz, also the split the FERPlus protocol was "
                                      "decided on; FERPlus Test is held out and not measured here")
    p.add_argument("--trained_with", default="", help="the command that trained the run (for the sidecar)")
    opts = p.parse_args(argv)
    OUT_DIR.mkdir(exist_ok=True)
    checkpoint, onnx = OUT_DIR / f"{opts.name}.pth", OUT_DIR / f"{opts.name}.onnx"
    rel = lambda path: os.path.relpath(path, REPO)  # noqa: E731
    slim = slim_checkpoint(opts.run_dir / "latest_model.pth", checkpoint)
    export_line = semilearn("export", "--load_path", rel(checkpoint), "--format", "onnx", "--out", rel(onnx)).strip()
    eval_argv = ["eval", "--load_path", rel(checkpoint), "--data_dir", opts.data_dir, *EVAL_FLAGS, "--json"]
    metrics = json.loads(semilearn(*eval_argv).strip().splitlines()[-1])
    results = json.loads((opts.run_dir / "results.json").read_text())
    meta = json.loads((OUT_DIR / f"{opts.name}.onnx.json").read_text())
    args = slim["args"]
    sidecar = {
        "name": opts.name,
        "files": {"checkpoint": checkpoint.name, "onnx": onnx.name, "onnx_json": f"{onnx.name}.json"},
        "class_names": meta["class_names"], "algorithm": args["algorithm"], "net": args["net"],
        "dataset": args["dataset"], "img_size": args["img_size"], "num_labels": args.get("num_labels"),
        "seed": args.get("seed"), "iterations": slim.get("it"),
        "run": {"folder": opts.run_dir.name, "trained_with": opts.trained_with,
                "results_json": {k: v for k, v in results.items() if not isinstance(v, (dict, list))}},
        "accuracy": {"split": "FERPlus Valid", "split_detail": opts.split, "weights": "EMA, fp32",
                     "top1": metrics["top-1-acc"], "balanced_acc": metrics["balanced_acc"],
                     "command": "semilearn " + shlex.join(eval_argv),
                     "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
        "export": {"command": "semilearn " + shlex.join(["export", "--load_path", rel(checkpoint), "--format", "onnx",
                                                         "--out", rel(onnx)]), "said": export_line},
        "made_with": "python " + shlex.join(["benchmarks/ship_model.py", *map(str, argv or sys.argv[1:])]),
    }
    (OUT_DIR / f"{opts.name}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(json.dumps(sidecar["accuracy"], indent=2))
    for path in (checkpoint, onnx):
        print(f"{rel(path)}: {path.stat().st_size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
