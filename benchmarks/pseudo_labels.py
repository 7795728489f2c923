"""Pseudo-label quantity and quality per host, with and without LEAF, from a grid's curves.

Reads ``results/<name>_curves.jsonl`` (compare.py keeps each finished cell's logged
diagnostics there) and prints, per algorithm and seed and then per host pair (means over
seeds), over the last quarter of training and over the whole run:

- ``mask``: the host mask's acceptance (``pl_mask_ratio``, quantity),
- ``accepted right``: how often the accepted pseudo-labels are right (``pl_accuracy``, quality),
- ``right and accepted``: their product, the share of the unlabeled batch the host trains
  on with a correct label,
- for LEAF, ``set hit``: how often a rejected sample's positive set holds its true class
  (``leaf_pos_hit``), and the set's mean size.

Then, per host and seed, LEAF minus host in each of the first three and in the tail top-1 (the
mean of the last evaluations in the curves), and how closely the top-1 difference follows each.

``--png`` draws the same quantities over training, one column per host (host grey, LEAF blue).
``--leaf_variant V`` takes the LEAF-wrapped hosts' runs from ``study.py`` variant V's curves
(``study_<host>_V``, ``study_V`` for FixMatch; the runs on the protocol of the headline grid
``--name``, or of the one whose curves ``--curves`` names) instead of the grid's own
``leaf_<host>`` cells; ``--leaf_variant shipped`` takes each host's shipped default (``study.py
--headline``'s rows).

    python benchmarks/pseudo_labels.py --name fer2013_v2 --png
    python benchmarks/pseudo_labels.py --name fer2013_v2 --leaf_variant learn_scale --png
    python benchmarks/pseudo_labels.py --name fer2013_v2 --leaf_variant shipped --png
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import HERE, HOSTS  # noqa: E402
from leaf_plugin.history import TAIL_EVALUATIONS  # noqa: E402
import study  # noqa: E402

RESULTS = HERE / "results"
KEYS = ("pl_mask_ratio", "pl_accuracy", "leaf_pos_hit", "leaf_pos_size_rejected")


def read_entries(path: Path) -> List[dict]:
    """The curve summaries of ``path`` that carry pseudo-label diagnostics."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in entries if e.get("diagnostics")]


def with_leaf_variant(entries: List[dict], results_dir: Path, grid: str, variant: str) -> List[dict]:
    """``entries`` (the headline grid ``grid``'s) with the ``leaf_<host>`` runs of ``study.py``
    variant ``variant`` in place of the grid's own, per host where that variant has runs;
    ``shipped``: each host's shipped default (``study.py --headline``'s rows). A study's runs are
    matched by the variant's settings key on the grid's protocol, so a study file that also holds
    another protocol's cells gives only this one's. ``ValueError`` where ``grid`` is no headline grid."""
    opts = study.grid_opts(grid, results_dir, sorted({int(e["seed"]) for e in entries}))
    variants = study.replaced_hosts(opts.protocol) if variant == "shipped" else dict.fromkeys(HOSTS, variant)
    for host, name in variants.items():
        h = study.host_opts(opts, host)
        key, leaf = study.settings(h, name), f"leaf_{host}"
        path = results_dir / f"{study.csv_name(h, name)}_curves.jsonl"
        runs = [e for e in (read_entries(path) if path.exists() else [])
                if e["algorithm"] == leaf and e["settings"] == key and int(e["seed"]) in opts.seeds]
        if runs:
            entries = [e for e in entries if e["algorithm"] != leaf] + runs
    return entries


def window_means(entry: dict, start_fraction: float) -> Dict[str, Optional[float]]:
    """Mean of each diagnostic over the log windows after ``start_fraction`` of training, and
    ``right_accepted`` = mask ratio x accepted accuracy, window by window."""
    diag = entry["diagnostics"]
    end = max(it for it, _ in diag["pl_mask_ratio"])
    out: Dict[str, Optional[float]] = {}
    for key in KEYS:
        values = [v for it, v in diag.get(key, []) if it > start_fraction * end and v is not None]
        out[key] = statistics.mean(values) if values else None
    acc = dict((it, v) for it, v in diag.get("pl_accuracy", []) if v is not None)
    both = [m * acc[it] for it, m in diag["pl_mask_ratio"] if it > start_fraction * end and it in acc]
    out["right_accepted"] = statistics.mean(both) if both else None
    return out


def fmt(value: Optional[float], digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = (("pl_mask_ratio", "mask"), ("pl_accuracy", "accepted right"), ("right_accepted", "right and accepted"),
           ("leaf_pos_hit", "set hit"), ("leaf_pos_size_rejected", "set size"))


def per_run_table(entries: List[dict], start_fraction: float) -> List[str]:
    lines = ["| algorithm | seed | " + " | ".join(name for _, name in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for e in sorted(entries, key=lambda e: (e["algorithm"], e["seed"])):
        m = window_means(e, start_fraction)
        lines.append(f"| {e['algorithm']} | {e['seed']} | " + " | ".join(fmt(m[k]) for k, _ in COLUMNS) + " |")
    return lines


def mean_over_seeds(entries: List[dict], algorithm: str, start_fraction: float) -> Dict[str, Optional[float]]:
    runs = [window_means(e, start_fraction) for e in entries if e["algorithm"] == algorithm]
    out = {}
    for key, _ in COLUMNS:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = statistics.mean(values) if values else None
    out["runs"] = len(runs)
    return out


def host_table(entries: List[dict]) -> List[str]:
    """Per host: host and leaf_host, means over seeds, last quarter and whole run."""
    lines = ["| host | algorithm | runs | mask (last quarter / whole) | accepted right | right and accepted "
             "| set hit | set size |", "|---|---|---|---|---|---|---|---|"]
    for host in HOSTS:
        for alg in (host, f"leaf_{host}"):
            late, whole = mean_over_seeds(entries, alg, 0.75), mean_over_seeds(entries, alg, 0.0)
            if not late["runs"]:
                continue
            cells = [f"{fmt(late[k])} / {fmt(whole[k])}" for k, _ in COLUMNS]
            lines.append(f"| {host} | {alg} | {late['runs']} | " + " | ".join(cells) + " |")
    return lines


def tail_top1(entry: dict, n: int = TAIL_EVALUATIONS) -> float:
    """The run's tail score: the mean test top-1 of its last ``n`` evaluations."""
    return statistics.mean(top1 for _, top1 in entry["eval"][-n:])


def paired_table(entries: List[dict]) -> List[str]:
    """Per host and seed, leaf_host - host in the last quarter's quantity and quality and in the tail
    top-1 (points), then the correlation over every pair of the top-1 difference with each."""
    keys = ("pl_mask_ratio", "pl_accuracy", "right_accepted")
    by = {(e["algorithm"], e["seed"]): e for e in entries}
    lines = ["| host | seed | mask | accepted right | right and accepted | tail top-1 (points) |",
             "|---|---|---|---|---|---|"]
    diffs: List[tuple] = []
    for host in HOSTS:
        for seed in sorted(s for a, s in by if a == host and (f"leaf_{host}", s) in by):
            leaf, base = by[(f"leaf_{host}", seed)], by[(host, seed)]
            late = [window_means(e, 0.75) for e in (leaf, base)]
            if any(late[0][k] is None or late[1][k] is None for k in keys):
                continue
            row = [late[0][k] - late[1][k] for k in keys] + [100 * (tail_top1(leaf) - tail_top1(base))]
            diffs.append(tuple(row))
            lines.append(f"| {host} | {seed} | " + " | ".join(f"{d:+.3f}" for d in row[:3]) + f" | {row[3]:+.2f} |")
    if len(diffs) < 3:
        return lines if diffs else []
    top1 = [d[3] for d in diffs]
    corr = ", ".join(f"{name} {statistics.correlation([d[i] for d in diffs], top1):+.2f}"
                     for i, name in enumerate(("mask", "accepted right", "right and accepted")))
    return lines + ["", f"Correlation over the {len(diffs)} pairs of the top-1 difference with the difference in: {corr}."]


def plot(entries: List[dict], path: Path) -> Optional[Path]:
    """One column per host, rows: mask ratio, accepted accuracy, LEAF's set hit (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hosts = [h for h in HOSTS if any(e["algorithm"] in (h, f"leaf_{h}") for e in entries)]
    if not hosts:
        return None
    rows = (("pl_mask_ratio", "mask ratio"), ("pl_accuracy", "accepted pseudo-labels right"),
            ("leaf_pos_hit", "rejected: set holds true class"))
    fig, axes = plt.subplots(len(rows), len(hosts), figsize=(3.6 * len(hosts), 2.4 * len(rows)), dpi=100,
                             squeeze=False, sharex=True)
    for col, host in enumerate(hosts):
        for alg, colour in ((host, "#888888"), (f"leaf_{host}", "#4c72b0")):
            runs = [e["diagnostics"] for e in entries if e["algorithm"] == alg]
            for row, (key, label) in enumerate(rows):
                series = [dict((it, v) for it, v in d.get(key, []) if v is not None) for d in runs]
                series = [s for s in series if s]
                if not series:
                    continue
                its = sorted(set.intersection(*(set(s) for s in series)))
                axes[row][col].plot(its, [statistics.mean(s[i] for s in series) for i in its], color=colour,
                                    lw=1, label=f"{alg} ({len(series)})")
                axes[row][col].set_ylabel(label, fontsize=8)
        axes[0][col].set_title(host)
        axes[0][col].legend(fontsize=7)
        axes[-1][col].set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="a compare.py grid: results/<name>_curves.jsonl")
    p.add_argument("--curves", type=Path, help="a curves file (instead of --name)")
    p.add_argument("--results_dir", type=Path, default=RESULTS)
    p.add_argument("--png", action="store_true", help="also write results/<name>_pseudo_labels.png")
    p.add_argument("--leaf_variant", help="the leaf_<host> runs from study.py variant V's curves "
                                          "(the PNG: <name>_<V>_pseudo_labels.png); 'shipped': each host's shipped default")
    opts = p.parse_args(argv)
    if (opts.name is None) == (opts.curves is None):
        p.error("give one of --name and --curves")
    path = opts.curves or opts.results_dir / f"{opts.name}_curves.jsonl"
    if not path.exists():
        print(f"pseudo_labels.py: {path} does not exist; expected a compare.py curves file", file=sys.stderr)
        return 2
    entries = read_entries(path)
    if opts.leaf_variant and opts.leaf_variant != "shipped" and opts.leaf_variant not in study.VARIANTS:
        print(f"pseudo_labels.py: --leaf_variant '{opts.leaf_variant}' is no study.py variant; expected 'shipped' "
              f"or one of study.py's --variants", file=sys.stderr)
        return 2
    if opts.leaf_variant:
        before = entries  # with_leaf_variant returns this same list where no study run replaced any
        grid = opts.name or path.name.removesuffix("_curves.jsonl")
        try:
            entries = with_leaf_variant(entries, path.parent, grid, opts.leaf_variant)
        except ValueError as err:
            print(f"pseudo_labels.py: --leaf_variant needs a headline grid's curves (--name or --curves): {err}",
                  file=sys.stderr)
            return 2
        if entries is before and opts.leaf_variant != "shipped":
            print(f"pseudo_labels.py: no run of study.py variant '{opts.leaf_variant}' on {grid}'s protocol "
                  f"in {path.parent}; expected its study_*{opts.leaf_variant}_curves.jsonl", file=sys.stderr)
            return 2
    if not entries:
        print(f"pseudo_labels.py: no run in {path} logged pseudo-label diagnostics", file=sys.stderr)
        return 2
    print(f"{path}: means over the log windows of the last quarter of training")
    print()
    print("\n".join(per_run_table(entries, 0.75)))
    print()
    print("Per host, means over seeds (last quarter / whole run):")
    print()
    print("\n".join(host_table(entries)))
    paired = paired_table(entries)
    if paired:
        print()
        print("LEAF - host, seed by seed (last quarter; the tail top-1 from the curves):")
        print()
        print("\n".join(paired))
    if opts.png:
        stem = opts.name or path.name.replace("_curves.jsonl", "")
        stem += f"_{opts.leaf_variant}" if opts.leaf_variant else ""
        out = plot(entries, path.with_name(f"{stem}_pseudo_labels.png"))
        if out:
            print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
