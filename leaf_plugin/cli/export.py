"""``semilearn export``: a trained run's EMA network as ONNX or TorchScript, plus its JSON.

    semilearn export --load_path RUN/model_best.pth --format onnx --out model.onnx [--dynamic_batch true]

Writes ``model.onnx`` (input ``input [N, 3, H, W]``, output ``logits [N, C]``) and
``model.onnx.json`` (class names, input size, mean/std, checkpoint, git commit); check it with
``semilearn predict --model model.onnx faces/``.  See :mod:`leaf_plugin.deploy.export`.
"""
from __future__ import annotations

import os
from typing import List

from ..deploy.export import FORMATS, export_model
from ..deploy.exported import metadata_path
from ..errors import UserError
from ..flags import OneLineParser, flag_bool
from ..runs import load_predictor

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def parser() -> OneLineParser:
    p = OneLineParser(prog="semilearn export",
                      description="Export a checkpoint's EMA network (eval mode) to ONNX or TorchScript, with a JSON "
                                  "beside it describing the input and the classes.")
    p.add_argument("--load_path", required=True, help="checkpoint (.pth) written by semilearn train")
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument("--out", default=None, help="file to write (default: beside the checkpoint, .onnx or .pt)")
    p.add_argument("--dynamic_batch", type=flag_bool, default=True, metavar="true|false",
                   help="any batch size (default true); false fixes the batch to 1")
    p.add_argument("--data_dir", default=None, help="where the run's dataset is, when its test-time transform needs "
                                                    "it (default: the run's own --data_dir)")
    return p


def run(argv: List[str]) -> int:
    opts = parser().parse_args(argv)
    out = opts.out or os.path.splitext(opts.load_path)[0] + SUFFIX[opts.format]
    if os.path.isdir(out):
        raise UserError(f"--out '{out}' is a folder; expected a file name such as model{SUFFIX[opts.format]}")
    predictor = load_predictor(opts.load_path, "cpu", opts.data_dir)
    meta, gap = export_model(predictor, opts.format, out, opts.load_path, opts.dynamic_batch)
    print(f"wrote {out} and {metadata_path(out)} ({meta['net']}, {meta['num_classes']} classes, input "
          f"{meta['input']['size'][0]} px; max abs logit difference from PyTorch {gap:.2e})")
    return 0
