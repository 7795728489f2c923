"""``semilearn pretrain``: self-supervised (SimCLR) pretraining of a backbone.

    semilearn pretrain --dataset fer2013 --data_dir DIR --net leaf_cnn4 --method simclr
    semilearn train ... --net leaf_cnn4 --pretrain_path saved_pretrain/simclr_fer2013_leaf_cnn4/backbone.pth
"""
from __future__ import annotations

import os
import shutil
from typing import List

from ..errors import UserError
from ..arguments import require_positive
from ..flags import OneLineParser, flag_bool, optional_bool
from ..runs import refuse_run_folder

METHODS = ("simclr",)


def parser() -> OneLineParser:
    p = OneLineParser(prog="semilearn pretrain",
                      description="Self-supervised pretraining (SimCLR) of a backbone on the TRAINING images of a "
                                  "dataset, labels unused. Writes RUN/backbone.pth, which 'semilearn train --net NET "
                                  "--pretrain_path RUN/backbone.pth' loads.")
    p.add_argument("-ds", "--dataset", default="digits", help="a dataset of the plug-in (semilearn list datasets)")
    p.add_argument("--data_dir", default="./data")
    p.add_argument("--net", default="leaf_cnn4", help="leaf_cnn4, resnet18, timm/NAME, ... (semilearn list nets)")
    p.add_argument("--method", default="simclr", choices=METHODS)
    p.add_argument("--num_train_iter", type=int, default=2000)
    p.add_argument("-bsz", "--batch_size", type=int, default=256, help="images per step (two views each)")
    p.add_argument("--lr", type=float, default=0.3)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--warmup_iter", type=int, default=None, help="linear warm-up steps (default: 5%% of the run)")
    p.add_argument("--temperature", type=float, default=0.2, help="NT-Xent temperature")
    p.add_argument("--img_size", type=int, default=None, help="default: the dataset's own")
    p.add_argument("--save_dir", default="./saved_pretrain")
    p.add_argument("-sn", "--save_name", default=None, help="run folder under --save_dir "
                   "(default: METHOD_DATASET_NET with / replaced by -)")
    p.add_argument("--save_every", type=int, default=100, help="checkpoint every N iterations (atomic)")
    p.add_argument("--num_log_iter", type=int, default=50, help="log the mean loss every N iterations")
    optional_bool(p, "--resume", False, "continue the run in --save_dir/--save_name")
    optional_bool(p, "--overwrite", False, "replace an existing run folder")
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip_bad_images", type=flag_bool, default=False)
    optional_bool(p, "--progress", True, "show a progress bar")
    return p


def parse_pretrain_args(argv: List[str]):
    """The pretraining flags, on top of every ``semilearn train`` default (the net builders read some)."""
    from ..data import get_dataset_spec
    from ..data.access import data_args

    own = parser().parse_args(argv)
    if get_dataset_spec(own.dataset) is None:
        raise UserError(f"dataset '{own.dataset}' is one of semilearn's own; semilearn pretrain reads the "
                        f"plug-in's datasets (semilearn list datasets)")
    args = data_args(own.dataset, own.data_dir, own.img_size, own.seed, skip_bad_images=own.skip_bad_images)
    for key, value in vars(own).items():
        if key != "img_size":
            setattr(args, key, value)
    args.use_pretrain, args.pretrain_path = False, ""
    require_positive(args, ("num_train_iter", "batch_size", "save_every", "num_log_iter", "img_size"))
    require_positive(args, ("lr", "temperature"), "number")
    if args.warmup_iter is not None and args.warmup_iter < 0:
        raise UserError(f"--warmup_iter is {args.warmup_iter}; expected 0 or more")
    if args.save_name is None:
        args.save_name = f"{args.method}_{args.dataset}_{args.net}".replace("/", "-")
    return args


def run(argv: List[str]) -> int:
    from ..pretrain import CHECKPOINT_FILE, pretrain
    from ..logs import close_logger, run_logger

    args = parse_pretrain_args(argv)
    run_dir = os.path.join(args.save_dir, args.save_name)
    refuse_run_folder(run_dir, resume=args.resume, overwrite=args.overwrite,
                      checkpoint=os.path.join(run_dir, CHECKPOINT_FILE))
    if not args.resume and os.path.isdir(run_dir) and os.listdir(run_dir):
        shutil.rmtree(run_dir)  # --overwrite
    existed = os.path.isdir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    logger = run_logger(f"pretrain.{args.save_name}", run_dir)
    try:
        result = pretrain(args, logger)
    except UserError:
        close_logger(logger)
        if not existed and not args.resume:
            shutil.rmtree(run_dir, ignore_errors=True)  # a refused run leaves nothing behind
        raise
    close_logger(logger)
    print(f"backbone: {result['backbone']}  (semilearn train --net {args.net} --pretrain_path {result['backbone']})")
    return 0
