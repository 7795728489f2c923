"""Does LEAF's category level find the faces humans find ambiguous?  Positive sets against the annotators' votes.

On a split where every face has its annotators' votes (FERPlus: ten per face), a model's
*positive set* is what LEAF's category level would train towards: the top ``n`` classes of
the model's probabilities, ``n`` from the cumulative rule (``--leaf_tau``, ``--leaf_max_pos``,
``--leaf_min_pos``).  Per bin of the votes' entropy it reports the faces, the mean set size,
and how often the set *covers* the face: holds every class that at least ``MIN_VOTES``
annotators chose.  Beside it, a reference model's top ``n`` of the same size per face (how
much of the coverage any model's ranking gives at that size) and its own set by the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .losses import positive_mask, positive_set_size

MIN_VOTES = 3  # a class at least this many annotators chose is one a positive set should hold
ENTROPY_EDGES = (0.5, 1.0, 1.5)  # bits; bins: unanimous (0), (0, 0.5], (0.5, 1], (1, 1.5], > 1.5
BIN_NAMES = ("0 (unanimous)", "(0, 0.5]", "(0.5, 1]", "(1, 1.5]", "> 1.5")


def vote_entropy(votes: np.ndarray, num_classes: int) -> np.ndarray:
    """Entropy in bits of each face's distribution of votes over the ``num_classes`` emotions
    (the other columns, unknown and not-a-face, left out); NaN for a face no one gave an emotion."""
    v = np.asarray(votes, dtype=np.float64)[:, :num_classes]
    total = v.sum(1, keepdims=True)
    p = np.divide(v, total, out=np.zeros_like(v), where=total > 0)
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return np.where(total[:, 0] > 0, 0.0 - (p * logs).sum(1), np.nan)


def entropy_bins(entropy: np.ndarray) -> np.ndarray:
    """Bin index 0..len(BIN_NAMES)-1 of each entropy (0: exactly 0, unanimous)."""
    h = np.nan_to_num(entropy, nan=0.0)
    return np.where(h <= 1e-12, 0, 1 + np.searchsorted(np.asarray(ENTROPY_EDGES), h, side="left"))


def top_sets(probs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``[N, C]`` bool: the top ``sizes[i]`` classes of each row of ``probs``."""
    return positive_mask(torch.as_tensor(probs), torch.as_tensor(sizes)).numpy()


def rule_sets(probs: np.ndarray, tau: float = 0.9, max_pos: int = 3, min_pos: int = 1) -> np.ndarray:
    """``[N, C]`` bool: LEAF's positive set of each row of ``probs`` (its cumulative rule)."""
    q = torch.as_tensor(probs)
    return positive_mask(q, positive_set_size(q, tau, max_pos, min_pos)).numpy()


def covers(sets: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Whether each set holds every class at least ``MIN_VOTES`` annotators chose."""
    chosen = np.asarray(votes)[:, :sets.shape[1]] >= MIN_VOTES
    return ~(chosen & ~sets).any(1)


@dataclass
class BinRow:
    """One entropy bin of :func:`ambiguity_rows` (shares in 0..1)."""

    name: str
    faces: int
    entropy: float  # mean entropy of its faces (bits)
    size: float  # mean positive-set size
    covered: float  # share of faces whose positive set covers them
    top1_covered: float  # share covered by the arg-max alone
    reference_covered: Optional[float] = None  # the reference model's top-n of the same size
    reference_size: Optional[float] = None  # the reference model's own set by the same rule
    reference_own_covered: Optional[float] = None


def ambiguity_rows(probs: np.ndarray, votes: np.ndarray, tau: float = 0.9, max_pos: int = 3, min_pos: int = 1,
                   reference: Optional[np.ndarray] = None) -> List[BinRow]:
    """Per entropy bin (and ``all`` last): the positive sets of ``probs`` [N, C] against ``votes``
    [N, >= C]; with ``reference`` (another model's [N, C] probabilities) its top-n of the same
    size per face and its own sets."""
    num_classes = probs.shape[1]
    entropy = vote_entropy(votes, num_classes)
    bins = entropy_bins(entropy)
    sets = rule_sets(probs, tau, max_pos, min_pos)
    sizes = sets.sum(1)
    ok = covers(sets, votes)
    ok1 = covers(top_sets(probs, np.ones(len(probs), dtype=np.int64)), votes)
    if reference is not None:
        ref_ok = covers(top_sets(reference, sizes), votes)
        own = rule_sets(reference, tau, max_pos, min_pos)
        own_size, own_ok = own.sum(1), covers(own, votes)
    rows = []
    for b, name in [(b, n) for b, n in enumerate(BIN_NAMES)] + [(-1, "all")]:
        sel = bins == b if b >= 0 else np.ones(len(bins), dtype=bool)
        if not sel.any():
            continue
        row = BinRow(name, int(sel.sum()), float(np.nanmean(entropy[sel])), float(sizes[sel].mean()),
                     float(ok[sel].mean()), float(ok1[sel].mean()))
        if reference is not None:
            row.reference_covered = float(ref_ok[sel].mean())
            row.reference_size, row.reference_own_covered = float(own_size[sel].mean()), float(own_ok[sel].mean())
        rows.append(row)
    return rows


def size_entropy_correlation(probs: np.ndarray, votes: np.ndarray, tau: float = 0.9, max_pos: int = 3,
                             min_pos: int = 1) -> float:
    """Spearman's rank correlation of the positive-set size with the votes' entropy (NaN when
    either is constant, e.g. every set of one class)."""
    from scipy.stats import spearmanr

    entropy = vote_entropy(votes, probs.shape[1])
    sizes = rule_sets(probs, tau, max_pos, min_pos).sum(1)
    keep = ~np.isnan(entropy)
    if np.ptp(sizes[keep]) == 0 or np.ptp(entropy[keep]) == 0:
        return float("nan")
    return float(spearmanr(sizes[keep], entropy[keep]).statistic)


def markdown_table(rows: Sequence[BinRow], model: str = "model", reference: str = "reference") -> str:
    """The rows as a markdown table (percentages)."""
    with_ref = any(r.reference_covered is not None for r in rows)
    head = f"| votes' entropy (bits) | faces | mean entropy | {model}: set size | {model}: covered (%) | " \
           f"{model}: arg-max covered (%) |"
    rule = "|---|---|---|---|---|---|"
    if with_ref:
        head += f" {reference}: top-n, same size, covered (%) | {reference}: own set size | " \
                f"{reference}: own set covered (%) |"
        rule += "---|---|---|"
    lines = [head, rule]
    for r in rows:
        line = (f"| {r.name} | {r.faces} | {r.entropy:.2f} | {r.size:.2f} | {100 * r.covered:.1f} | "
                f"{100 * r.top1_covered:.1f} |")
        if with_ref:
            line += f" {100 * r.reference_covered:.1f} | {r.reference_size:.2f} | {100 * r.reference_own_covered:.1f} |"
        lines.append(line)
    return "\n".join(lines)


def plot_ambiguity(series: Dict[str, Sequence[BinRow]], path: str, title: str = "") -> str:
    """Mean positive-set size and coverage per entropy bin, one line per model in ``series``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_size, ax_cov) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for i, (name, rows) in enumerate(series.items()):
        color = f"C{i}"
        rows = [r for r in rows if r.name != "all"]
        x = [BIN_NAMES.index(r.name) for r in rows]
        ax_size.plot(x, [r.size for r in rows], marker="o", color=color, label=name)
        ax_cov.plot(x, [100 * r.covered for r in rows], marker="o", color=color, label=f"{name}: positive set")
        if rows and rows[0].reference_covered is not None:
            ax_cov.plot(x, [100 * r.reference_covered for r in rows], marker="x", linestyle="--", color=color,
                        label=f"{name}: its host's top-n, same size")
    for ax, label in ((ax_size, "mean positive-set size"), (ax_cov, "faces covered (%)")):
        ax.set_xticks(range(len(BIN_NAMES)), BIN_NAMES, rotation=20, fontsize=7)
        ax.set_xlabel("annotators' vote entropy (bits)", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
    ax_size.legend(fontsize=6)
    ax_cov.legend(fontsize=6)
    ax_cov.set_title(f"covered: every class with >= {MIN_VOTES} votes is in the set", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
