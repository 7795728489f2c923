"""``semilearn list``: the registered algorithms, networks and datasets."""
from __future__ import annotations

import argparse
from typing import List


def run(argv: List[str]) -> int:
    from semilearn.core.utils import ALGORITHMS

    from ..algorithms import LEAF_ALGORITHMS
    from ..data import DATASETS, all_dataset_names
    from ..nets.builders import net_names

    parser = argparse.ArgumentParser(prog="semilearn list")
    parser.add_argument("what", nargs="?", choices=["algorithms", "nets", "datasets"], default=None)
    what = parser.parse_args(argv).what
    if what in (None, "algorithms"):
        print("algorithms:")
        for name in sorted(ALGORITHMS.keys()):
            print(f"  {name}" + ("  (LEAF)" if name in LEAF_ALGORITHMS else ""))
    if what in (None, "nets"):
        print("nets:")
        for name in net_names():
            print(f"  {name}")
    if what in (None, "datasets"):
        print("datasets:")
        for name in all_dataset_names():
            spec = DATASETS.get(name)
            classes = f"{spec.num_classes} classes" if spec and spec.num_classes else "classes from its folders"
            print(f"  {name}" + (f"  ({classes}) {spec.description}" if spec else "  (semilearn)"))
    return 0
