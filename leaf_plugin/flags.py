"""The flags of ``semilearn train`` as one table, and the options objects read from them.

USB's ``train.py`` flags and the plug-in's, as one argparse table (no parsing of config files
here; see :mod:`leaf_plugin.arguments`).  The runtime's flags are declared once, as the fields
of :class:`RuntimeOptions` (default, choices, help); :func:`complete_args` and
:func:`read_options` are the one place where a namespace of unknown origin (USB's own
``get_config``, a checkpoint's saved arguments) gets the defaults it lacks.

It sits at the bottom of the package, and imports neither torch nor semilearn, so that every
command can ask for "every flag at its default" without reaching up or starting slowly.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from typing import Any, Dict, Optional, Sequence, Type, TypeVar

from .errors import UserError

# flags saved in a checkpoint that say how a run was started, not what model it trained:
# dropped when a later command (eval, report, predict) rebuilds the run from its checkpoint
RUN_START_KEYS = ("resume", "load_path", "overwrite", "c", "multiprocessing_distributed", "world_size", "rank",
                  "pretrain_path", "use_pretrain")

# defaults that make a bare ``semilearn train`` the embedded default job
EMBEDDED_DEFAULTS = dict(dataset="digits", net="leaf_cnn4", num_train_iter=600, num_eval_iter=200,
                         num_log_iter=50, batch_size=16, uratio=3, eval_batch_size=256, img_size=32,
                         seed=0, num_workers=0, ema_m=0.99)
# FERPlus's label rules (leaf_plugin.data.ferplus): the most-voted emotion, or FERPlus's majority
FERPLUS_LABEL_MODES = ("plurality", "majority")
# the words semilearn's str2bool reads as true and as false
TRUE_WORDS = ("yes", "true", "t", "y", "1")
FALSE_WORDS = ("no", "false", "f", "n", "0")


def flag_bool(value) -> bool:
    """semilearn's ``str2bool`` (the same words), with a one-line error; written here so that the
    ONNX path of ``predict`` and ``serve`` parses its flags without importing semilearn (torch)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise argparse.ArgumentTypeError(f"expected true or false, got '{value}'")


flag_bool.__name__ = "bool"


class OneOf:
    """An argparse type accepting one of ``choices``, for flags declared where argparse's own
    ``choices`` cannot be given (semilearn's ``SSL_Argument``); the parser reads ``.choices``."""

    def __init__(self, choices: Sequence[str]):
        self.choices = tuple(choices)
        self.__name__ = "one of " + ", ".join(self.choices)

    def __call__(self, value: str) -> str:
        if value not in self.choices:
            raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(self.choices)})")
        return value


def optional_bool(parser, name, default, help=""):
    """``--name`` alone means true; ``--name false`` works too (USB has store_true)."""
    parser.add_argument(name, type=flag_bool, nargs="?", const=True, default=default, help=help)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad flags as a UserError (one line, exit code 2)."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")


def add_usb_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of USB's ``train.py`` (same names, dests and meanings)."""
    g = p.add_argument_group("saving and loading")
    g.add_argument("--save_dir", type=str, default="./saved_models")
    g.add_argument("-sn", "--save_name", type=str, default=None,
                   help="run folder under --save_dir (None: ALGORITHM_DATASET_NUMLABELS_SEED)")
    optional_bool(g, "--resume", False, "continue the run in --save_dir/--save_name (or from --load_path)")
    g.add_argument("--load_path", type=str, default=None, help="checkpoint to resume from")
    optional_bool(g, "--overwrite", False, "replace an existing run folder (never done without it)")
    g.add_argument("-o", dest="overwrite", action="store_const", const=True, help=argparse.SUPPRESS)
    optional_bool(g, "--use_tensorboard", True, "write TensorBoard logs (default true)")
    optional_bool(g, "--use_wandb", False)
    optional_bool(g, "--use_aim", False)

    g = p.add_argument_group("training")
    g.add_argument("--epoch", type=int, default=1)
    g.add_argument("--num_train_iter", type=int, default=EMBEDDED_DEFAULTS["num_train_iter"])
    g.add_argument("--num_warmup_iter", type=int, default=0)
    g.add_argument("--num_eval_iter", type=int, default=EMBEDDED_DEFAULTS["num_eval_iter"])
    g.add_argument("--num_log_iter", type=int, default=EMBEDDED_DEFAULTS["num_log_iter"])
    g.add_argument("-nl", "--num_labels", type=int, default=None,
                   help="labeled images in total, num_labels // C per class (None: the dataset's default; "
                        "-1: every image labeled)")
    g.add_argument("-bsz", "--batch_size", type=int, default=EMBEDDED_DEFAULTS["batch_size"])
    g.add_argument("--uratio", type=int, default=EMBEDDED_DEFAULTS["uratio"])
    g.add_argument("--eval_batch_size", type=int, default=EMBEDDED_DEFAULTS["eval_batch_size"])
    g.add_argument("--ema_m", type=float, default=EMBEDDED_DEFAULTS["ema_m"],
                   help="EMA momentum of the evaluated model (USB uses 0.999 for its 1M-iteration runs; "
                        "0.999 keeps half of the initial weights after 700 steps)")
    g.add_argument("--ulb_loss_ratio", type=float, default=1.0)

    g = p.add_argument_group("optimizer")
    g.add_argument("--optim", type=str, default="SGD", choices=["SGD", "AdamW"])
    g.add_argument("--lr", type=float, default=3e-2)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight_decay", type=float, default=5e-4)
    g.add_argument("--layer_decay", type=float, default=1.0)

    g = p.add_argument_group("backbone")
    g.add_argument("--net", type=str, default=EMBEDDED_DEFAULTS["net"])
    g.add_argument("--net_from_name", type=flag_bool, default=False)
    g.add_argument("--use_pretrain", type=flag_bool, default=False)
    g.add_argument("--pretrain_path", type=str, default="")

    g = p.add_argument_group("algorithm")
    g.add_argument("-alg", "--algorithm", type=str, default="leaf_fixmatch")
    g.add_argument("--use_cat", type=flag_bool, default=True)
    g.add_argument("--amp", "--use_amp", dest="amp", type=flag_bool, default=False,
                   help="mixed precision: bf16 autocast on the CPU, fp16 with a grad scaler on CUDA")
    g.add_argument("--clip_grad", type=float, default=0)
    g.add_argument("-imb_alg", "--imb_algorithm", type=str, default=None)

    g = p.add_argument_group("data")
    g.add_argument("--data_dir", type=str, default="./data")
    g.add_argument("-ds", "--dataset", type=str, default=EMBEDDED_DEFAULTS["dataset"])
    g.add_argument("-nc", "--num_classes", type=int, default=None,
                   help="set from the dataset for the plug-in's datasets")
    g.add_argument("--train_sampler", type=str, default="RandomSampler")
    g.add_argument("--num_workers", type=int, default=EMBEDDED_DEFAULTS["num_workers"])
    g.add_argument("--include_lb_to_ulb", type=flag_bool, default=True)
    g.add_argument("--lb_imb_ratio", type=int, default=1)
    g.add_argument("--ulb_imb_ratio", type=int, default=1)
    g.add_argument("--ulb_num_labels", type=int, default=None)
    g.add_argument("--img_size", type=int, default=None, help="None: the dataset's own")
    g.add_argument("--crop_ratio", type=float, default=0.875)
    g.add_argument("--max_length", type=int, default=512)
    g.add_argument("--max_length_seconds", type=float, default=4.0)
    g.add_argument("--sample_rate", type=int, default=16000)

    g = p.add_argument_group("distributed")
    g.add_argument("--world-size", "--world_size", dest="world_size", type=int, default=1,
                   help="number of nodes")
    g.add_argument("--rank", type=int, default=0, help="node rank")
    g.add_argument("-du", "--dist-url", "--dist_url", dest="dist_url", type=str, default="tcp://127.0.0.1:11111")
    g.add_argument("--dist-backend", "--dist_backend", dest="dist_backend", type=str, default=None,
                   help="None: nccl on GPUs, gloo on CPUs")
    g.add_argument("--seed", type=int, default=EMBEDDED_DEFAULTS["seed"])
    g.add_argument("--gpu", type=lambda v: None if str(v) == "None" else int(v), default=None)
    g.add_argument("--multiprocessing-distributed", "--multiprocessing_distributed",
                   dest="multiprocessing_distributed", type=flag_bool, nargs="?", const=True, default=False)
    g.add_argument("-c", "--c", dest="c", type=str, default="", help="a YAML config file in USB's format")


def flag(default: Any, help: str, choices: Optional[Sequence[Any]] = None, kind: Any = None,
         bare_means_true: bool = False, cli: bool = True):
    """A dataclass field that is also a ``semilearn train`` flag: its default, help and choices
    (``kind``: the argparse type when the default does not say, e.g. for a default of None;
    ``bare_means_true``: ``--name`` alone means true, as USB's store_true flags; ``cli=False``:
    an option the commands set, not a flag)."""
    return field(default=default, metadata={"help": help, "choices": tuple(choices) if choices else None,
                                            "kind": kind, "bare": bare_means_true, "cli": cli})


EMA_BN_MODES = ("live", "ema", "recompute")
DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class RuntimeOptions:
    """What the plug-in's runtime adds to any algorithm: placement, speed, evaluation, output."""

    device: str = flag("auto", "where to train; auto = CUDA when present", DEVICES)
    procs_per_node: Optional[int] = flag(None, "processes per node with --multiprocessing-distributed (None: one "
                                               "per GPU, or 2 on CPU)", kind=int)
    threads: int = flag(0, "CPU threads for torch (0: torch's default, one per core); 1 helps on a busy machine")
    channels_last: bool = flag(False, "channels-last memory format for the networks and every image batch")
    compile: bool = flag(False, "torch.compile the training network (checkpoints load with or without it)")
    skip_nonfinite: int = flag(0, "skip up to N steps whose loss is NaN/inf instead of stopping")
    ema_debias: bool = flag(False, "bias-corrected EMA (as Adam's moments): the EMA model averages only trained "
                                   "weights, with --ema_m's window; for runs too short for --ema_m to forget the "
                                   "random start")
    ema_bn: str = flag("live", "BN statistics of the evaluated EMA model: the live model's (semilearn), averaged "
                               "like the weights (ema), or re-estimated before each evaluation (recompute)",
                       EMA_BN_MODES)
    ema_bn_batches: int = flag(20, "training batches (all views) that --ema_bn recompute re-estimates the "
                                   "statistics on")
    ema_bn_compare: bool = flag(False, "also evaluate under every --ema_bn mode, logged as eval_bn_MODE/... "
                                       "(training unchanged)")
    num_eval_iter_tail: int = flag(0, "in the last fifth of training, also evaluate every N iterations (0: only "
                                      "every --num_eval_iter); results.json's top1_tail is the mean of the last 5 "
                                      "evaluations")
    pretrain_strict: bool = flag(True, "stop when --pretrain_path does not match the backbone")
    progress: bool = flag(True, "show a progress bar", bare_means_true=True)
    report: bool = flag(True, "write plots and report.md into the run folder at the end", bare_means_true=True)
    eval_only: bool = flag(False, "build the evaluation split only (eval, report)", cli=False)

    @classmethod
    def of(cls, args) -> "RuntimeOptions":
        return read_options(cls, args)


def add_options(group, options: type, prefix: str = "") -> None:
    """One flag per field of the dataclass ``options`` (``--PREFIXname``), from its :func:`flag` metadata."""
    for f in fields(options):
        meta = f.metadata
        if not meta.get("cli", True):  # not a flag, but every parsed namespace holds it
            group.set_defaults(**{prefix + f.name: f.default})
            continue
        kind = meta.get("kind") or type(f.default)
        name = f"--{prefix}{f.name}"
        if kind is bool and meta.get("bare"):
            optional_bool(group, name, f.default, meta["help"])
        else:
            group.add_argument(name, type=flag_bool if kind is bool else kind, default=f.default,
                               choices=meta.get("choices"), help=meta.get("help", ""))


def add_plugin_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("leaf-plugin runtime")
    add_options(g, RuntimeOptions)
    g = p.add_argument_group("leaf-plugin data")
    g.add_argument("--aug_recipe", type=str, default=None, choices=["released", "small"],
                   help="augmentation recipe (None: the dataset's own)")
    g.add_argument("--ferplus_label", type=str, default=FERPLUS_LABEL_MODES[0], choices=FERPLUS_LABEL_MODES,
                   help="FERPlus labels: the most-voted emotion of the ten annotators (plurality), or FERPlus's "
                        "majority rule with the other faces dropped (majority)")
    g.add_argument("--skip_bad_images", type=flag_bool, default=False,
                   help="skip (and count) unreadable images instead of stopping")


def base_parser(prog: str = "semilearn train", add_help: bool = True) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, add_help=add_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                      description="Train a USB (semilearn) algorithm, LEAF-wrapped or not, "
                      "on CPU or CUDA. Values on the command line override the config file.")
    add_usb_arguments(p)
    add_plugin_arguments(p)
    return p


# ---- the one place a namespace of unknown origin gets its defaults ----------------------------
@lru_cache(maxsize=None)
def train_defaults() -> Dict[str, Any]:
    """Every ``semilearn train`` flag of the table (not the algorithms' own) and its default, and
    the options that are not flags."""
    parser = base_parser()
    return {**parser._defaults, **{a.dest: a.default for a in parser._actions if a.dest != "help"}}


def complete_args(args, defaults: Optional[Dict[str, Any]] = None):
    """Give ``args`` every flag it lacks, at its default (``defaults``: those of the flag table;
    an algorithm passes its own ``get_argument()`` defaults too).  Returns ``args``."""
    for key, value in (train_defaults() if defaults is None else defaults).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


Options = TypeVar("Options")


def read_options(cls: Type[Options], args, prefix: str = "") -> Options:
    """The frozen options object ``cls`` from ``args``: each field from flag ``PREFIXfield``,
    its declared default where ``args`` (from another origin) lacks it."""
    values = {}
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        values[f.name] = getattr(args, prefix + f.name, default)
    return cls(**values)
