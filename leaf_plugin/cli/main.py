"""The ``semilearn`` command: train, eval, list (and predict, report, pretrain, export, serve)."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import List, Optional

from ..errors import TrainingError, UserError

COMMANDS = {
    "train": "train an algorithm (USB's train.py flags, plus --device and the algorithm's own)",
    "eval": "evaluate a checkpoint on its dataset's test split",
    "list": "list the registered algorithms, networks and datasets",
    "predict": "classify images with a trained checkpoint",
    "report": "write confusion matrix, curves, expert plots and report.md for a run folder",
    "pretrain": "self-supervised (SimCLR) pretraining of a backbone on unlabeled images",
    "export": "export a checkpoint's network to ONNX or TorchScript (plus a JSON describing it)",
    "serve": "a web page and JSON API classifying the faces in pictures and webcam frames",
}


def usage() -> str:
    lines = ["usage: semilearn COMMAND [options]   (semilearn COMMAND --help for each)", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def cmd_train(argv: List[str]) -> int:
    from ..arguments import parse_train_args
    from .train import run_train

    run_train(parse_train_args(argv))
    return 0


def cmd_eval(argv: List[str]) -> int:
    from .evaluate import run_eval

    return run_eval(argv)


def cmd_list(argv: List[str]) -> int:
    import leaf_plugin  # noqa: F401  (registers everything)
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


def _lazy(module: str, func: str):
    def run(argv):
        mod = __import__(f"leaf_plugin.cli.{module}", fromlist=[func])
        return getattr(mod, func)(argv)
    return run


HANDLERS = {"train": cmd_train, "eval": cmd_eval, "list": cmd_list,
            "predict": _lazy("predict", "run_predict"), "report": _lazy("report_cmd", "run_report"),
            "pretrain": _lazy("pretrain_cmd", "run_pretrain"), "export": _lazy("export_cmd", "run_export"),
            "serve": _lazy("serve_cmd", "run_serve")}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in HANDLERS:
        print(f"semilearn: unknown command '{command}'; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    os.environ.setdefault("WANDB_MODE", "disabled")
    try:
        import leaf_plugin  # noqa: F401  (registers algorithms, nets and datasets)
        return int(HANDLERS[command](rest) or 0)
    except (UserError, TrainingError) as exc:
        print(f"semilearn {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, TypeError) as exc:
        # modules below the command raise these for bad values, as torch does; the command
        # reports them as bad input (SEMILEARN_TRACEBACK=1 shows where they came from)
        if os.environ.get("SEMILEARN_TRACEBACK"):
            raise
        print(f"semilearn {command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print(f"semilearn {command}: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    sys.exit(main())
