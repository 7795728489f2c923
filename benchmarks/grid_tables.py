"""The tables and figures of a grid's CSV: means per algorithm, paired per-seed differences with
their 90 % t interval, the curves' shape, bar and curve plots.  ``compare.py`` runs the grid and
prints these; ``study.py`` and ``pseudo_labels.py`` read the same rows."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Dict, List, Optional

HOSTS = ("fixmatch", "flexmatch", "freematch")
LATE_ITERS = 500  # the mask ratio and positive-set size are averaged over this many last iterations


def read_rows(path: Path) -> List[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cell_key(row: dict) -> tuple:
    return row["algorithm"], int(row["seed"]), row["settings"]


def read_curves(path: Path) -> Dict[tuple, dict]:
    """``results/<name>_curves.jsonl``: one run summary per line, keyed like the CSV's cells."""
    if not path.exists():
        return {}
    curves = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            curves[cell_key(entry)] = entry
    return curves


def mean_std(values: List[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} +- {100 * std:.2f}"


def has_tail(row: dict) -> bool:
    value = row.get("top1_tail")
    return bool(value) and value == value and value.lower() != "nan"


def t_interval(values: List[float], level: float = 0.90) -> tuple:
    """The two-sided ``level`` t interval of the mean of ``values`` (nan, nan for one value)."""
    from scipy.stats import t

    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    half = t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(values) / n ** 0.5
    mean = statistics.mean(values)
    return mean - half, mean + half


def interval_text(values: List[float]) -> str:
    """``[low, high]`` of :func:`t_interval` in points with their signs, ``-`` for fewer than two values."""
    low, high = t_interval(values)
    return "-" if low != low else f"[{low:+.2f}, {high:+.2f}]"


def summarise(rows: List[dict], algorithms: List[str]) -> str:
    """The markdown tables: per algorithm, and the paired leaf_host - host differences with a
    90 % t interval over seeds.  When every row has a tail score (the mean top-1 of the last
    evaluations) it is the headline, the final top-1 beside it; older rows show the final only."""
    by: Dict[str, Dict[int, dict]] = {}
    for r in rows:
        by.setdefault(r["algorithm"], {})[int(r["seed"])] = r
    tail = bool(rows) and all(has_tail(r) for r in rows)
    score = "top1_tail" if tail else "top1"
    if tail:
        lines = ["| algorithm | seeds | top-1, tail (%) | top-1, final (%) | balanced acc, tail (%) | "
                 "wall time per run (s) |", "|---|---|---|---|---|---|"]
    else:
        lines = ["| algorithm | seeds | top-1 (%) | balanced acc (%) | wall time per run (s) |",
                 "|---|---|---|---|---|"]
    for alg in algorithms:
        cells = by.get(alg, {})
        if not cells:
            continue
        top1 = [float(c["top1"]) for c in cells.values()]
        wall = statistics.mean(float(c["wall_time_s"]) for c in cells.values())
        seeds = ",".join(map(str, sorted(cells)))
        if tail:
            tails = [float(c["top1_tail"]) for c in cells.values()]
            bal = [float(c["balanced_tail"]) for c in cells.values()]
            lines.append(f"| {alg} | {seeds} | {mean_std(tails)} | {mean_std(top1)} | {mean_std(bal)} | {wall:.0f} |")
        else:
            bal = [float(c["balanced_acc"]) for c in cells.values()]
            lines.append(f"| {alg} | {seeds} | {mean_std(top1)} | {mean_std(bal)} | {wall:.0f} |")
    paired = []
    for host in HOSTS:
        leaf, base = by.get(f"leaf_{host}", {}), by.get(host, {})
        seeds = sorted(set(leaf) & set(base))
        if not seeds:
            continue
        diffs = [100 * (float(leaf[s][score]) - float(base[s][score])) for s in seeds]
        per_seed = ", ".join(f"{s}: {d:+.2f}" for s, d in zip(seeds, diffs))
        paired.append(f"| leaf_{host} - {host} | {per_seed} | {statistics.mean(diffs):+.2f} | {min(diffs):+.2f} | "
                      f"{interval_text(diffs)} |")
    if paired:
        what = "tail top-1" if tail else "top-1"
        lines += ["", f"| paired {what} difference (points) | per seed | mean | min | 90 % interval of the mean |",
                  "|---|---|---|---|---|", *paired]
    return "\n".join(lines)


def curves_table(rows: List[dict], curves: Dict[tuple, dict], algorithms: List[str]) -> str:
    """Per run: test top-1 at each evaluation, and the late mask ratio and positive-set size."""
    def num(value: Optional[float], digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = []
    for alg in algorithms:
        for r in sorted((r for r in rows if r["algorithm"] == alg), key=lambda r: int(r["seed"])):
            c = curves.get(cell_key(r))
            if c is None:
                continue
            if not lines:
                its = " / ".join(str(it) for it, _ in c["eval"])
                lines = [f"| algorithm | seed | top-1 (%) at {its} | mask ratio, last {LATE_ITERS} it | "
                         f"positive-set size |", "|---|---|---|---|---|"]
            acc = " / ".join(f"{100 * a:.1f}" for _, a in c["eval"])
            lines.append(f"| {alg} | {r['seed']} | {acc} | {num(c['mask_ratio'], 2)} | {num(c['pos_size'], 2)} |")
    return "\n".join(lines)


def late_fall_table(rows: List[dict], curves: Dict[tuple, dict], algorithms: List[str]) -> str:
    """Per algorithm, how far its curves end below their highest evaluation: the means over its
    runs of the highest test top-1, of its iteration, and of the highest minus the tail score.
    It describes the curves' shape; nothing is chosen by it."""
    lines = []
    for alg in algorithms:
        runs = [(curves[cell_key(r)]["eval"], float(r["top1_tail"]))
                for r in sorted(rows, key=lambda r: int(r["seed"]))
                if r["algorithm"] == alg and cell_key(r) in curves and has_tail(r)]
        if not runs:
            continue
        peaks = [max(ev, key=lambda point: point[1]) for ev, _ in runs]
        falls = [100 * (top - tail) for (_, top), (_, tail) in zip(peaks, runs)]
        lines.append(f"| {alg} | {len(runs)} | {100 * statistics.mean(top for _, top in peaks):.2f} | "
                     f"{statistics.mean(it for it, _ in peaks):.0f} | {statistics.mean(falls):.2f} | "
                     f"{' / '.join(f'{f:.2f}' for f in falls)} |")
    if not lines:
        return ""
    return "\n".join(["| algorithm | runs | highest top-1 (%) | at iteration | highest - tail (points) | per seed |",
                      "|---|---|---|---|---|---|", *lines])


def paired_peak_table(rows: List[dict], curves: Dict[tuple, dict]) -> str:
    """Per host pair, the tail score's paired difference split in two: how much higher the
    LEAF-wrapped run's highest evaluation is than the host's, and how much less it falls from
    there to its tail score (so that tail difference = highest difference + fall difference).
    Means over seeds with their 90 % t interval; it describes the curves, nothing is chosen by it."""
    runs = {(r["algorithm"], int(r["seed"])): (max(v for _, v in curves[cell_key(r)]["eval"]), float(r["top1_tail"]))
            for r in rows if cell_key(r) in curves and has_tail(r)}

    def cell(values: List[float]) -> str:
        interval = interval_text(values)
        return f"{statistics.mean(values):+.2f}" + ("" if interval == "-" else f" {interval}")

    lines = []
    for host in HOSTS:
        seeds = sorted(s for a, s in runs if a == host and (f"leaf_{host}", s) in runs)
        if not seeds:
            continue
        pairs = [(runs[(f"leaf_{host}", s)], runs[(host, s)]) for s in seeds]
        top = [100 * (leaf[0] - base[0]) for leaf, base in pairs]
        fall = [100 * ((base[0] - base[1]) - (leaf[0] - leaf[1])) for leaf, base in pairs]
        tail = [100 * (leaf[1] - base[1]) for leaf, base in pairs]
        lines.append(f"| leaf_{host} - {host} | {','.join(map(str, seeds))} | {cell(top)} | {cell(fall)} | {cell(tail)} |")
    if not lines:
        return ""
    return "\n".join(["| pair | seeds | highest evaluation: LEAF - host (points) | falls less than the host by "
                      "(points) | tail top-1: LEAF - host (points) |", "|---|---|---|---|---|", *lines])


def plot(rows: List[dict], algorithms: List[str], out_prefix: Path, curves: Dict[tuple, dict]) -> List[Path]:
    """Bar chart with error bars, and the mean learning curve per algorithm from ``curves``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [a for a in algorithms if any(r["algorithm"] == a for r in rows)]
    if not present:
        return []
    means, stds = [], []
    for alg in present:
        vals = [100 * float(r["top1"]) for r in rows if r["algorithm"] == alg]
        means.append(statistics.mean(vals))
        stds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(present)), 3.2), dpi=100)
    ax.bar(range(len(present)), means, yerr=stds, capsize=4, color=["#4c72b0" if a.startswith("leaf") else "#999999"
                                                                      for a in present])
    ax.set_xticks(range(len(present)), present, rotation=35, ha="right")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("mean +- std over seeds")
    fig.tight_layout()
    bars = out_prefix.with_name(out_prefix.name + "_bars.png")
    fig.savefig(bars)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for alg in present:
        points = [{it: 100 * acc for it, acc in curves[cell_key(r)]["eval"]} for r in rows
                  if r["algorithm"] == alg and cell_key(r) in curves]
        if points:
            its = sorted(set.intersection(*(set(p) for p in points)))
            ax.plot(its, [statistics.mean(p[i] for p in points) for i in its], marker="o", ms=3, label=alg)
    ax.set_xlabel("iteration")
    ax.set_ylabel("test top-1 (%)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    curves_png = out_prefix.with_name(out_prefix.name + "_curves.png")
    fig.savefig(curves_png)
    plt.close(fig)
    return [bars, curves_png]
