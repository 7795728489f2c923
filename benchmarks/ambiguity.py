"""Does LEAF's category level find the faces humans find ambiguous?  The FERPlus grid's final EMA models.

For each host pair and seed of a FERPlus headline grid (``compare.py --protocol ferplus``;
every ``leaf_<host>`` at its shipped default, as in ``study.py --headline``), the ``leaf_<host>``
model's positive sets on FERPlus Valid (LEAF's rule, the run's ``--leaf_tau`` /
``--leaf_max_pos``) against the entropy of each face's ten votes, beside the host's top ``n`` of
the same size per face and the host's own set by the same rule (:mod:`leaf_plugin.ambiguity`).
The models' probabilities on Valid are kept in ``results/<name>_valid_probs.npz`` (float16, one
array per cell), so the tables are remade from a fresh clone once the run folders are gone.

    python benchmarks/ambiguity.py --name ferplus --seeds 0 1 2 3 4 --png
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_tables import HOSTS  # noqa: E402
from study import grid_opts, headline_rows  # noqa: E402

HERE = Path(__file__).resolve().parent
FERPLUS_NPZ = HERE.parent.parent / "shared" / "data" / "ferplus" / "ferplus_dev.npz"


def cell_name(row: dict) -> str:
    return f"{row['algorithm']}_s{row['seed']}_{row['settings']}"


def valid_probs(run_dir: str, images: np.ndarray) -> np.ndarray:
    """The run's final EMA model's class probabilities [N, C] on ``images`` (uint8 grey faces)."""
    import torch
    from PIL import Image

    from leaf_plugin.runs import default_checkpoint, load_predictor

    predictor = load_predictor(default_checkpoint(run_dir), "cpu")
    out = []
    for i in range(0, len(images), 512):
        batch = torch.stack([predictor.transform(Image.fromarray(x)) for x in images[i:i + 512]])
        out.append(predictor.probabilities(batch).numpy())
    return np.concatenate(out)


def update_probs(rows: List[dict], path: Path, images: np.ndarray) -> Dict[str, np.ndarray]:
    """The cached probabilities, with every cell whose run folder is here and not yet cached added."""
    cached = dict(np.load(path)) if path.exists() else {}
    added = 0
    for row in rows:
        if cell_name(row) not in cached and (Path(row["run_dir"]) / "latest_model.pth").is_file():
            cached[cell_name(row)] = valid_probs(row["run_dir"], images).astype(np.float16)
            added += 1
            print(f"probabilities of {cell_name(row)} on FERPlus Valid", file=sys.stderr, flush=True)
    if added:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **cached)
        tmp.replace(path)
    return cached


def mean_rows(per_seed: List[list]):
    """The bins' rows averaged over seeds (the same faces in each bin at every seed)."""
    from leaf_plugin.ambiguity import BinRow

    out = []
    for rows in zip(*per_seed):
        values = {}
        for name in ("entropy", "size", "covered", "top1_covered", "reference_covered", "reference_size",
                     "reference_own_covered"):
            vals = [getattr(r, name) for r in rows]
            values[name] = None if vals[0] is None else statistics.mean(vals)
        out.append(BinRow(rows[0].name, rows[0].faces, **values))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="ferplus", help="the headline grid: results/<name>.csv (ferplus or ferplus_200)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--results_dir", type=Path, default=HERE / "results", help="where the grid's CSV is")
    p.add_argument("--out_dir", type=Path, default=HERE / "results", help="where the probabilities, PNG go")
    p.add_argument("--data", type=Path, default=FERPLUS_NPZ, help="the FERPlus npz (votes of Valid)")
    p.add_argument("--png", action="store_true", help="also write results/<name>_ambiguity.png")
    opts = p.parse_args(argv)

    from leaf_plugin.ambiguity import ambiguity_rows, markdown_table, plot_ambiguity, size_entropy_correlation
    from leaf_plugin.data.ferplus import read_ferplus
    from leaf_plugin.layers import LeafLoss

    if not opts.data.is_file():
        print(f"ambiguity.py: the FERPlus file '{opts.data}' does not exist; expected ../shared/data/ferplus/"
              f"ferplus_dev.npz beside the checkout (or --data)", file=sys.stderr)
        return 2
    valid = read_ferplus(str(opts.data), "plurality")[1]
    try:  # every leaf_<host> at its shipped default, as in study.py --headline
        rows = headline_rows(grid_opts(opts.name, opts.results_dir, opts.seeds))[0]
    except ValueError as err:
        print(f"ambiguity.py: {err}", file=sys.stderr)
        return 2
    rows = [r for r in rows if r["algorithm"] in (*HOSTS, *(f"leaf_{h}" for h in HOSTS))]
    probs = update_probs(rows, opts.out_dir / f"{opts.name}_valid_probs.npz", valid.images)
    cell = {(r["algorithm"], int(r["seed"])): probs.get(cell_name(r)) for r in rows}
    rule = LeafLoss()  # every leaf_ host runs at LEAF's rule: tau 0.9, at most 3 classes
    series = {}
    for host in HOSTS:
        seeds = [s for s in opts.seeds if cell.get((host, s)) is not None and cell.get((f"leaf_{host}", s)) is not None]
        if not seeds:
            continue
        per_seed = [ambiguity_rows(cell[(f"leaf_{host}", s)].astype(np.float64), valid.votes, rule.tau,
                                   rule.max_pos, rule.min_pos, reference=cell[(host, s)].astype(np.float64))
                    for s in seeds]
        rho = [size_entropy_correlation(cell[(f"leaf_{host}", s)].astype(np.float64), valid.votes, rule.tau,
                                        rule.max_pos, rule.min_pos) for s in seeds]
        series[f"leaf_{host}"] = mean_rows(per_seed)
        print(f"\n### leaf_{host} against {host} (seeds {','.join(map(str, seeds))}; means over seeds)\n")
        print(markdown_table(series[f"leaf_{host}"], f"leaf_{host}", host))
        print(f"\nSpearman correlation of the positive-set size with the votes' entropy, per seed: "
              f"{' / '.join(f'{r:+.3f}' for r in rho)}")
    if opts.png and series:
        path = plot_ambiguity(series, str(opts.out_dir / f"{opts.name}_ambiguity.png"),
                              f"FERPlus Valid: positive sets of the LEAF-wrapped hosts ({opts.name})")
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
