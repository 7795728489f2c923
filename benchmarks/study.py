"""Which part of LEAF helps, and which default to ship?  One ``compare.py`` grid per variant.

Each variant is ``leaf_fixmatch`` with a few flags changed (the ablation flags of
``semilearn train --algorithm leaf_fixmatch --help``), run through ``compare.py`` with the same
protocol and seeds, its cells in ``benchmarks/results/study_<variant>.csv`` (resumable like any
grid). The table puts each variant beside ``fixmatch`` of the same seeds, read from the main
grid's CSV (``--baseline``), as a paired difference; the ``default`` row is that grid's own
``leaf_fixmatch`` (the same settings, so it is not run twice). A table row holds only the cells
whose settings key is the variant's.

    python benchmarks/study.py --pretrain_path benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth \
        --seeds 0 --baseline fer2013_simclr
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402

# name -> (flags, what it asks)
VARIANTS: Dict[str, tuple] = {
    "default": ([], "every level on, the shipped defaults"),
    "no_levels": (["--leaf_semantic", "false", "--leaf_instance", "false", "--leaf_category", "false",
                   "--leaf_lambda_c", "0"], "all three levels off: FixMatch on the mean of two weak views"),
    "semantic_only": (["--leaf_instance", "false", "--leaf_category", "false", "--leaf_lambda_c", "0"],
                      "semantic experts only"),
    "instance_only": (["--leaf_semantic", "false", "--leaf_category", "false"],
                      "instance experts and the two-view term only"),
    "category_only": (["--leaf_semantic", "false", "--leaf_instance", "false", "--leaf_lambda_c", "0"],
                      "ambiguous pseudo-labels only"),
    "faithful": (["--leaf_faithful", "true"], "the released code's modules and loss"),
    "amb_on_all": (["--leaf_amb_on", "all"], "ambiguous loss on every sample, not only rejected ones"),
    "view2_no_grad": (["--leaf_view2_grad", "false"], "second weak view without gradient (cheaper step)"),
    "no_consistency": (["--leaf_lambda_c", "0"], "no two-view NT-Xent term"),
    "consistency_0.5": (["--leaf_lambda_c", "0.5"], "two-view term weight 0.5 (default 0.1)"),
    "scale_4": (["--leaf_feature_scale", "4"], "logit scale 4 after the normalised feature (default 16)"),
    "scale_32": (["--leaf_feature_scale", "32"], "logit scale 32"),
    "dense_gate": (["--leaf_top_k", "8"], "all 8 experts per sample (dense softmax gate)"),
    "experts_4_top1": (["--leaf_num_experts", "4", "--leaf_top_k", "1"], "4 experts, top-1"),
    "zero_init": (["--leaf_expert_init", "zero"], "experts' second layers start at zero: each level starts "
                  "as the identity, so the pretrained feature reaches the classifier unchanged"),
    "ema_plain": (["--ema_debias", "false"], "plain EMA 0.999, which keeps 14 % of the random start"),
}


def mean(values: List[float]) -> str:
    return f"{100 * statistics.mean(values):.2f}" if values else "-"


def grid_argv(opts, name: str) -> List[str]:
    """The ``compare.py`` arguments of variant ``name``'s grid."""
    return ["--name", f"study_{name}", "--protocol", "fer2013", "--algorithms", "leaf_fixmatch",
            "--seeds", *map(str, opts.seeds), "--num_train_iter", str(opts.num_train_iter),
            "--pretrain_path", opts.pretrain_path, "--threads", str(opts.threads),
            "--results_dir", opts.results_dir, "--runs_dir", opts.runs_dir, "--no_plots", "--", *VARIANTS[name][0]]


def settings(opts, name: str, algorithm: str = "leaf_fixmatch") -> str:
    """The settings key of variant ``name``'s cells, so a row never mixes cells run with other
    flags (another protocol, or the same variant run again with a default changed by flag)."""
    grid = compare.build_parser().parse_args(grid_argv(opts, name))
    return compare.cell_settings(grid, algorithm, opts.seeds[0])


def table(opts) -> str:
    results = Path(opts.results_dir)
    base_key = settings(opts, "default", "fixmatch")
    base = {int(r["seed"]): float(r["top1"]) for r in compare.read_rows(results / f"{opts.baseline}.csv")
            if r["algorithm"] == "fixmatch" and int(r["iterations"]) == opts.num_train_iter
            and r["settings"] == base_key}
    lines = ["| variant | flags | seeds | top-1 (%) | balanced (%) | vs fixmatch, same seeds (points) |",
             "|---|---|---|---|---|---|"]
    other = 0
    for name in opts.variants:
        source = opts.baseline if name == "default" else f"study_{name}"
        key = settings(opts, name)
        cells = [r for r in compare.read_rows(results / f"{source}.csv")
                 if r["algorithm"] == "leaf_fixmatch" and int(r["iterations"]) == opts.num_train_iter
                 and int(r["seed"]) in opts.seeds]
        rows = [r for r in cells if r["settings"] == key]
        other += len(cells) - len(rows)
        if not rows:
            continue
        seeds = sorted(int(r["seed"]) for r in rows)
        top1 = [float(r["top1"]) for r in rows]
        diffs = [100 * (float(r["top1"]) - base[int(r["seed"])]) for r in rows if int(r["seed"]) in base]
        diff = f"{statistics.mean(diffs):+.2f}" if diffs else "-"
        flags = " ".join(VARIANTS[name][0]) or "(none)"
        lines.append(f"| {name} | `{flags}` | {','.join(map(str, seeds))} | {mean(top1)} | "
                     f"{mean([float(r['balanced_acc']) for r in rows])} | {diff} |")
    if other:
        lines.append(f"\n({other} cell(s) at these iterations and seeds ran with other protocol flags "
                     f"and are left out; the commit in each CSV row prints them)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--num_train_iter", type=int, default=2000)
    p.add_argument("--pretrain_path", default="benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth",
                   help="the start of every cell (default: the committed SimCLR checkpoint; '' from scratch)")
    p.add_argument("--baseline", default="fer2013_simclr", help="grid CSV whose fixmatch rows are the baseline")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--results_dir", default=str(compare.HERE / "results"))
    p.add_argument("--runs_dir", default=str(compare.REPO / "runs" / "compare"))
    p.add_argument("--table-only", dest="table_only", action="store_true")
    opts = p.parse_args(argv)
    failed = 0
    if not opts.table_only:
        for name in [v for v in opts.variants if v != "default"]:
            print(f"== {name}: {VARIANTS[name][1]}", flush=True)
            failed |= compare.main(grid_argv(opts, name))
    print()
    print(table(opts))
    return failed


if __name__ == "__main__":
    sys.exit(main())
