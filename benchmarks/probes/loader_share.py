"""The data loader's share of a training step, from finished runs' ``metrics.jsonl``.

``train/prefetch_time`` is the wait for the next batch, ``train/run_time`` the step itself
(forward, backward, update), both logged at every log iteration; the share is the median
prefetch over the median prefetch + step.

    python benchmarks/probes/loader_share.py runs/compare/speed_plain_fixmatch_s0_* ...
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def loader_share(run_dir: Path) -> dict:
    from leaf_plugin.history import read_history

    rows = [r for r in read_history(str(run_dir)) if "train/prefetch_time" in r and "train/run_time" in r]
    rows = rows[1:]  # the first logged step includes the loaders' start
    if not rows:
        return {}
    prefetch = statistics.median(r["train/prefetch_time"] for r in rows)
    step = statistics.median(r["train/run_time"] for r in rows)
    return {"steps": len(rows), "prefetch_ms": 1e3 * prefetch, "step_ms": 1e3 * step,
            "share": prefetch / (prefetch + step)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path)
    opts = p.parse_args(argv)
    print("| run | logged steps | prefetch (ms) | step (ms) | loader share |")
    print("|---|---|---|---|---|")
    for run in opts.run_dirs:
        s = loader_share(run)
        if s:
            print(f"| {run.name} | {s['steps']} | {s['prefetch_ms']:.1f} | {s['step_ms']:.1f} | "
                  f"{100 * s['share']:.1f} % |")
        else:
            print(f"| {run.name} | 0 | - | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
