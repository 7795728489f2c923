"""The ``semilearn`` command: one module per command, imported only when that command runs."""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import List, Optional

from ..errors import TrainingError, UserError

# command -> (module under leaf_plugin.cli that defines run(argv) -> exit code, one line of help)
COMMANDS = {
    "train": ("train", "train an algorithm (USB's train.py flags, plus --device and the algorithm's own)"),
    "eval": ("evaluate", "evaluate a checkpoint on its dataset's test split"),
    "list": ("listing", "list the registered algorithms, networks and datasets"),
    "predict": ("predict", "classify images with a trained checkpoint"),
    "report": ("report", "write confusion matrix, curves, expert plots and report.md for a run folder"),
    "pretrain": ("pretrain", "self-supervised (SimCLR) pretraining of a backbone on unlabeled images"),
    "export": ("export", "export a checkpoint's network to ONNX or TorchScript (plus a JSON describing it)"),
    "serve": ("serve", "a web page and JSON API classifying the faces in pictures and webcam frames"),
}


def usage() -> str:
    lines = ["usage: semilearn COMMAND [options]   (semilearn COMMAND --help for each)", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"semilearn: unknown command '{command}'; expected one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    os.environ.setdefault("WANDB_MODE", "disabled")
    try:
        module = importlib.import_module(f"{__package__}.{COMMANDS[command][0]}")
        return int(module.run(rest) or 0)
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
