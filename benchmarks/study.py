"""Which part of LEAF helps a host, and which default to ship?  One ``compare.py`` grid per variant.

Each variant is ``leaf_<host>`` (``--host``, default fixmatch) with a few flags changed (the
``--leaf_*`` flags of ``semilearn train --algorithm leaf_<host> --help``), run through
``compare.py`` with the same protocol and seeds, its cells in
``benchmarks/results/study_<variant>.csv`` (``study_<host>_<variant>.csv`` for the other hosts;
resumable like any grid). The table puts each variant beside the host of the same seeds, read
from the main grid's CSV (``--baseline``), as paired per-seed differences with their mean and a
90 % t interval (the tail score when every cell has one, else the final top-1); the ``default``
row is that grid's own ``leaf_<host>`` (the same settings, so it is not run twice). A table row
holds only the cells whose settings key is the variant's.

    # the current protocol (6,000 iterations, tail score), against the headline grid
    python benchmarks/study.py --host fixmatch --variants no_category min_pos_2 --seeds 0 1 2 --threads 1
    # a candidate default against the headline grid's leaf_<host> cells, paired by seed (FERPlus screens)
    python benchmarks/study.py --protocol ferplus --variants learn_scale --versus default --seeds 0 1 2 --table-only
    # the ablation table of the method's levels at the shipped defaults, every host (runs what is
    # missing, then prints)
    python benchmarks/study.py --ablation --seeds 0 1 2 --threads 1
    # the headline at every host's shipped default (the learn_scale cells where the grid ran before it)
    python benchmarks/study.py --headline --seeds 0 1 2 3 4
    # the FERPlus headline (800 labels; ferplus_200: the 200-label table)
    python benchmarks/study.py --headline --protocol ferplus --seeds 0 1 2 3 4
    # the 2,000-iteration studies of the fer2013_v1 headline
    python benchmarks/study.py --protocol fer2013_v1 --baseline fer2013_simclr --table-only --seeds 0
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402
import grid_tables  # noqa: E402

# name -> (flags, what it asks)
VARIANTS: Dict[str, tuple] = {
    "default": ([], "the headline grid's own leaf_<host> cells, at the defaults of the grid's commit: the head's "
                "scale fixed at 16 where the grid ran before leaf_<host> learned it (RAN_AT_FIXED_SCALE)"),
    "fixed_scale": (["--leaf_learn_scale", "false"], "the head's scale fixed at 16 (the default before "
                    "the hosts learned it)"),
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
    "scale_8": (["--leaf_feature_scale", "8"], "logit scale 8, fixed: between the over-confident 16 and the learned ~4.6"),
    "scale_12": (["--leaf_feature_scale", "12"], "logit scale 12, fixed: between 8 (fewer, better labels) and 16"),
    "dense_gate": (["--leaf_top_k", "8"], "all 8 experts per sample (dense softmax gate)"),
    "experts_4_top1": (["--leaf_num_experts", "4", "--leaf_top_k", "1"], "4 experts, top-1"),
    "zero_init": (["--leaf_expert_init", "zero"], "experts' second layers start at zero: each level starts "
                  "as the identity, so the pretrained feature reaches the classifier unchanged"),
    "ema_plain": (["--ema_debias", "false"], "plain EMA 0.999, which keeps 14 % of the random start"),
    # the ablation table of the method's levels
    "no_semantic": (["--leaf_semantic", "false"], "without the semantic level"),
    "no_instance": (["--leaf_instance", "false"], "without the instance level"),
    "no_category": (["--leaf_category", "false", "--leaf_lambda_c", "0"],
                    "without the category level and the two-view term"),
    # candidate mechanisms (issue 16)
    "host_view_own": (["--leaf_host_view", "own"], "the host masks with its own weak view, not the average"),
    "learn_scale": (["--leaf_learn_scale", "true"], "the feature scale learned from 16"),
    "plain_head": (["--leaf_normalize", "false"], "the classifier sees the gated feature at its own norm, not x16"),
    "rezero": (["--leaf_expert_init", "rezero"], "each level v + g * experts(v), g learned from 0"),
    "unconfident": (["--leaf_amb_on", "unconfident"],
                    "LEAF's terms on the samples whose averaged-view confidence is below 0.95"),
    "min_pos_2": (["--leaf_min_pos", "2"], "positive sets of at least two classes"),
    "min_pos_3": (["--leaf_min_pos", "3"], "positive sets of always the top three classes (hit most often)"),
    "amb_0.25": (["--leaf_lambda_amb", "0.25"], "ambiguous loss weighted 0.25 (default 1)"),
    "tau_0.99": (["--leaf_tau", "0.99"], "positive sets closed at cumulative probability 0.99 (default 0.9)"),
}
# A control, not a candidate: every part of LEAF off, so what is left is what the wrapper adds to
# every step (the second weak view in the host's forward and the data pipeline).
VARIANTS["null_leaf"] = (VARIANTS["no_levels"][0] + VARIANTS["plain_head"][0] + VARIANTS["host_view_own"][0],
                         "every LEAF part off: the host's own head on the backbone feature, its own weak view; "
                         "only the second weak view still rides in the forward")
# Between the two: no level, the host's own weak view, so what is left of LEAF is the normalised head.
VARIANTS["head_only"] = (VARIANTS["no_levels"][0] + VARIANTS["host_view_own"][0],
                         "all three levels off and the host's own weak view: the normalised head at its scale alone")
# The ablation table at the shipped defaults. The hosts learn the head's scale since the learn_scale
# screens chose it (RESULTS.md, results/ferplus.md), so their ablations spell that default out: a
# cell keyed by its flags alone could not be told from one run before the default changed.
# The same spelling serves the screens run on top of the learned scale (ls_amb_0.25, ls_unconfident,
# ls_zero_init).
LEVELS_OFF = ("no_semantic", "no_instance", "no_category", "no_levels")
for _name in LEVELS_OFF + ("host_view_own", "amb_0.25", "min_pos_2", "unconfident", "zero_init"):
    VARIANTS[f"ls_{_name}"] = (VARIANTS["learn_scale"][0] + VARIANTS[_name][0],
                               f"{VARIANTS[_name][1]}, the head's scale learned")


def shipped(host: str) -> str:
    """The variant that is ``leaf_<host>``'s shipped default: ``learn_scale`` where the host
    registers a learned head scale, else ``default`` (the headline grid's own cells)."""
    from leaf_plugin.algorithms import LEAF_ALGORITHMS

    return "learn_scale" if LEAF_ALGORITHMS[f"leaf_{host}"].leaf_defaults.get("leaf_learn_scale", False) else "default"


# leaf_fixmatch's ablation ran at the fixed scale, its default until the FERPlus screens; until its
# ls_ cells are all in (results/ablation.md), its table stays at the fixed scale and says so.
ABLATION_AT_FIXED_SCALE = ("fixmatch",)


def ablation(host: str) -> List[str]:
    """The ablation variants of ``leaf_<host>``: all levels, then each level off and all off; the
    ``ls_`` ones where the host learns the head's scale by default and its ablation ran so (not
    the hosts in :data:`ABLATION_AT_FIXED_SCALE`)."""
    if shipped(host) == "learn_scale" and host not in ABLATION_AT_FIXED_SCALE:
        return ["learn_scale", *(f"ls_{name}" for name in LEVELS_OFF)]
    return ["default", *LEVELS_OFF]


ITERATIONS = {"fer2013": 6000, "fer2013_v1": 2000, "ferplus": 6000, "ferplus_200": 6000}
BASELINES = {"fer2013": "fer2013_v2", "fer2013_v1": "fer2013_simclr", "ferplus": "ferplus", "ferplus_200": "ferplus_200"}
# Per protocol, the hosts whose headline-grid leaf_<host> cells ran at the fixed head scale, before
# the learned scale became leaf_<host>'s default: their headline rows are the host's learn_scale
# study cells (the same computation). leaf_flexmatch and leaf_freematch learn the scale since the
# FER2013 screens (RESULTS.md), leaf_fixmatch since the FERPlus screens (results/ferplus.md).
# fer2013_v1 is history (results/fer2013_v1.md): its headline keeps the cells as its grid ran them.
RAN_AT_FIXED_SCALE: Dict[str, Tuple[str, ...]] = {
    "fer2013": ("fixmatch", "flexmatch", "freematch"), "fer2013_v1": (),
    "ferplus": ("fixmatch",), "ferplus_200": ("fixmatch",)}
# a protocol's headline grid -> the protocol
GRID_PROTOCOL = {grid: protocol for protocol, grid in BASELINES.items()}


def mean(values: List[float]) -> str:
    return f"{100 * statistics.mean(values):.2f}" if values else "-"


def iterations(opts) -> int:
    return opts.num_train_iter or ITERATIONS[opts.protocol]


def study_name(host: str, name: str) -> str:
    """Variant ``name``'s grid under ``host``: ``study_<variant>`` under fixmatch (as before), else
    ``study_<host>_<variant>``."""
    return f"study_{name}" if host == "fixmatch" else f"study_{host}_{name}"


def csv_name(opts, name: str) -> str:
    """The variant's grid; the ``default`` variant's is the headline grid's own."""
    if name == "default":
        return opts.baseline or BASELINES[opts.protocol]
    return study_name(opts.host, name)


def grid_argv(opts, name: str) -> List[str]:
    """The ``compare.py`` arguments of variant ``name``'s grid."""
    return ["--name", csv_name(opts, name), "--protocol", opts.protocol, "--algorithms", f"leaf_{opts.host}",
            "--seeds", *map(str, opts.seeds), "--num_train_iter", str(iterations(opts)),
            "--pretrain_path", opts.pretrain_path, "--threads", str(opts.threads),
            "--results_dir", opts.results_dir, "--runs_dir", opts.runs_dir, "--no_plots", "--", *VARIANTS[name][0]]


def settings(opts, name: str, algorithm: Optional[str] = None) -> str:
    """The settings key of variant ``name``'s cells, so a row never mixes cells run with other
    flags (another protocol, or the same variant run again with a default changed by flag)."""
    grid = compare.build_parser().parse_args(grid_argv(opts, name))
    return compare.cell_settings(grid, algorithm or f"leaf_{opts.host}", opts.seeds[0])


def variant_cells(opts, name: str) -> Tuple[List[dict], int]:
    """Variant ``name``'s ``leaf_<host>`` cells at the study's iterations and seeds whose settings
    key is the variant's, and how many others its CSV holds there (other protocol flags)."""
    leaf, its, key = f"leaf_{opts.host}", iterations(opts), settings(opts, name)
    cells = [r for r in grid_tables.read_rows(Path(opts.results_dir) / f"{csv_name(opts, name)}.csv")
             if r["algorithm"] == leaf and int(r["iterations"]) == its and int(r["seed"]) in opts.seeds]
    rows = [r for r in cells if r["settings"] == key]
    return rows, len(cells) - len(rows)


def headline_rows(opts) -> Tuple[List[dict], Dict[str, str]]:
    """The headline grid's (``--baseline``) cells with every ``leaf_<host>`` at its shipped default:
    the grid's own cells, or the ``learn_scale`` study cells of the hosts in the protocol's
    :data:`RAN_AT_FIXED_SCALE`; and the grids they came from (``""``: the headline grid;
    ``leaf_<host>``: the study grid that replaced its rows)."""
    grids = {"": csv_name(opts, "default")}
    keys = {settings(opts, "default", alg) for alg in compare.DEFAULT_GRID}
    rows = [r for r in grid_tables.read_rows(Path(opts.results_dir) / f"{grids['']}.csv")
            if r["settings"] in keys and int(r["seed"]) in opts.seeds]
    for host, variant in replaced_hosts(opts.protocol).items():
        study = host_opts(opts, host)
        rows = [r for r in rows if r["algorithm"] != f"leaf_{host}"] + variant_cells(study, variant)[0]
        grids[f"leaf_{host}"] = csv_name(study, variant)
    return rows, grids


def replaced_hosts(protocol: str) -> Dict[str, str]:
    """Host -> the study variant that holds ``leaf_<host>``'s shipped default on ``protocol``,
    for the hosts whose headline-grid cells are not it (:data:`RAN_AT_FIXED_SCALE`)."""
    return {host: shipped(host) for host in RAN_AT_FIXED_SCALE[protocol] if shipped(host) != "default"}


def host_opts(opts, host: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(opts), "host": host})


def grid_opts(grid: str, results_dir: Path, seeds: Sequence[int]) -> argparse.Namespace:
    """The study options of the protocol whose headline grid is ``grid`` (``ferplus``,
    ``fer2013_v2``, ...) at ``seeds``; ``ValueError`` naming the headline grids where it is none."""
    if grid not in GRID_PROTOCOL:
        raise ValueError(f"'{grid}' is no protocol's headline grid; expected one of {', '.join(GRID_PROTOCOL)}")
    return build_parser().parse_args(
        ["--protocol", GRID_PROTOCOL[grid], "--results_dir", str(results_dir), "--seeds", *map(str, seeds)])


def headline(opts) -> str:
    """``compare.py``'s tables of :func:`headline_rows`, where the rows came from, and how far
    each algorithm's curves end below their highest point (from the same grids' curves files)."""
    rows, grids = headline_rows(opts)
    curves = {}
    for name in grids.values():
        curves.update(grid_tables.read_curves(Path(opts.results_dir) / f"{name}_curves.jsonl"))
    sources = "; ".join(f"{alg}: {name}.csv" if alg else f"{name}.csv" for alg, name in grids.items())
    shape = [grid_tables.late_fall_table(rows, curves, compare.DEFAULT_GRID), grid_tables.paired_peak_table(rows, curves)]
    return "\n\n".join([grid_tables.summarise(rows, compare.DEFAULT_GRID), f"(rows from {sources})",
                         *filter(None, shape)])


def table(opts) -> str:
    results = Path(opts.results_dir)
    its = iterations(opts)
    base_key = settings(opts, "default", opts.host)
    base = {int(r["seed"]): r for r in grid_tables.read_rows(results / f"{csv_name(opts, 'default')}.csv")
            if r["algorithm"] == opts.host and int(r["iterations"]) == its and r["settings"] == base_key}
    found, other = {}, 0
    for name in opts.variants:
        rows, others = variant_cells(opts, name)
        other += others
        if rows:
            found[name] = rows
    versus = opts.versus or opts.host  # what each variant is paired with: the host, or another variant
    if opts.versus is None:
        ref = base
    else:  # the cells already read when --versus is among --variants, else read now
        ref = {int(r["seed"]): r for r in found.get(opts.versus) or variant_cells(opts, opts.versus)[0]}
    every = [r for rows in found.values() for r in rows] + list(base.values()) + list(ref.values())
    tail = bool(every) and all(grid_tables.has_tail(r) for r in every)
    score, balanced = ("top1_tail", "balanced_tail") if tail else ("top1", "balanced_acc")
    what = "tail " if tail else ""
    lines = [f"| variant | flags | seeds | {what}top-1 (%) | {what}balanced (%) | vs {versus}, per seed (points) "
             f"| mean | min | 90 % interval |", "|---|---|---|---|---|---|---|---|---|"]
    hosts = [base[s] for s in sorted(base) if s in opts.seeds]
    if hosts:
        lines.append(f"| {opts.host} (the host) | | {','.join(r['seed'] for r in hosts)} | "
                     f"{mean([float(r[score]) for r in hosts])} | {mean([float(r[balanced]) for r in hosts])} "
                     f"| | | | |")
    for name, rows in found.items():
        rows = sorted(rows, key=lambda r: int(r["seed"]))
        diffs = [100 * (float(r[score]) - float(ref[int(r["seed"])][score])) for r in rows
                 if int(r["seed"]) in ref and name != versus]
        flags = " ".join(VARIANTS[name][0]) or "(none)"
        lines.append(f"| {name} | `{flags}` | {','.join(r['seed'] for r in rows)} | "
                     f"{mean([float(r[score]) for r in rows])} | {mean([float(r[balanced]) for r in rows])} | "
                     f"{' / '.join(f'{d:+.2f}' for d in diffs) or '-'} | "
                     f"{f'{statistics.mean(diffs):+.2f}' if diffs else '-'} | {f'{min(diffs):+.2f}' if diffs else '-'} | "
                     f"{grid_tables.interval_text(diffs)} |")
    if other:
        lines.append(f"\n({other} cell(s) at these iterations and seeds ran with other protocol flags "
                     f"and are left out; the commit in each CSV row prints them)")
    return "\n".join(lines)


LEVEL_NAMES = {"no_semantic": "the semantic level", "no_instance": "the instance level",
               "no_category": "the category level and the two-view term", "no_levels": "all three levels"}


def levels_table(opts) -> str:
    """What each level buys ``leaf_<host>`` at its shipped defaults: the all-levels cell minus the
    cell with that level off, paired by seed, with the mean and its 90 % t interval (tail top-1
    points; the final top-1 when a cell lacks a tail score).  Empty until a level-off cell exists."""
    everything, *offs = ablation(opts.host)
    full = {int(r["seed"]): r for r in variant_cells(opts, everything)[0]}
    pairs = {}
    for name in offs:
        rows = [r for r in variant_cells(opts, name)[0] if int(r["seed"]) in full]
        if rows:
            pairs[name] = sorted(rows, key=lambda r: int(r["seed"]))
    if not pairs:
        return ""
    tail = all(grid_tables.has_tail(r) for rows in pairs.values() for r in rows) and \
        all(grid_tables.has_tail(full[int(r["seed"])]) for rows in pairs.values() for r in rows)
    score = "top1_tail" if tail else "top1"
    lines = [f"| what it buys | the variant without it | seeds | {everything} - variant, per seed "
             f"({'tail ' if tail else ''}top-1 points) | mean | 90 % interval |", "|---|---|---|---|---|---|"]
    for name, rows in pairs.items():
        gains = [100 * (float(full[int(r["seed"])][score]) - float(r[score])) for r in rows]
        lines.append(f"| {LEVEL_NAMES[name.removeprefix('ls_')]} | {name} | {','.join(r['seed'] for r in rows)} | "
                     f"{' / '.join(f'{g:+.2f}' for g in gains)} | {statistics.mean(gains):+.2f} | "
                     f"{grid_tables.interval_text(gains)} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", choices=grid_tables.HOSTS, default="fixmatch", help="variants of leaf_<host>")
    p.add_argument("--protocol", choices=sorted(ITERATIONS), default="fer2013")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--num_train_iter", type=int, default=None,
                   help="default: the protocol's (2000 for fer2013_v1, else 6000)")
    p.add_argument("--pretrain_path", default="benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth",
                   help="the start of every cell (default: the committed SimCLR checkpoint; '' from scratch)")
    p.add_argument("--baseline", default=None,
                   help="grid CSV whose host rows are the baseline (default: the protocol's headline grid: "
                        + ", ".join(f"{k}: {v}" for k, v in BASELINES.items()) + ")")
    p.add_argument("--versus", default=None, choices=list(VARIANTS),
                   help="pair each variant with this variant's cells of the same seed instead of the host's "
                        "(e.g. --versus default: against the headline grid's own leaf_<host> cells)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--results_dir", default=str(compare.HERE / "results"))
    p.add_argument("--runs_dir", default=str(compare.REPO / "runs" / "compare"))
    p.add_argument("--ablation", action="store_true",
                   help="the ablation table of every host at its shipped defaults: all levels, each level "
                        "off, all off, then what each level buys (all levels minus it off, paired by seed; "
                        "--host ignored)")
    p.add_argument("--headline", action="store_true",
                   help="print the headline grid's tables with every leaf_<host> at its shipped default "
                        "(runs nothing)")
    p.add_argument("--table-only", dest="table_only", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    opts = build_parser().parse_args(argv)
    if opts.headline:
        print(headline(opts))
        return 0
    studies = [opts]
    if opts.ablation:
        studies = [argparse.Namespace(**{**vars(opts), "host": host, "variants": ablation(host)}) for host in grid_tables.HOSTS]
    failed = 0
    if not opts.table_only:
        for study in studies:
            for name in [v for v in study.variants if v != "default"]:
                print(f"== leaf_{study.host} {name}: {VARIANTS[name][1]}", flush=True)
                failed |= compare.main(grid_argv(study, name))
    for study in studies:
        fixed = " (at the fixed head scale, its default when the ablation ran)" \
            if study.host in ABLATION_AT_FIXED_SCALE else ""
        print(f"\n### leaf_{study.host}{fixed}\n" if opts.ablation else "")
        print(table(study))
        levels = levels_table(study) if opts.ablation else ""
        if levels:
            print(f"\n{levels}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
