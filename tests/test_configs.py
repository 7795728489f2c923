"""usb_configs/*.yaml: each parses through the real ``semilearn train`` parser, names a
registered algorithm, net and dataset, has no unknown key, and the CPU-scale FER2013 and
FERPlus configs really train."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import FER_NPZ, FERPLUS_NPZ, REPO, run_cli

CONFIG_DIR = REPO / "usb_configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
ALGORITHMS = ("fixmatch", "flexmatch", "freematch", "leaf_fixmatch", "leaf_flexmatch", "leaf_freematch", "leaf")
PAPER = [(ds, n) for ds in ("rafdb", "ferplus", "affectnet7", "affectnet8") for n in (100, 1000)]
CPU_SCALE = {("fer2013", 175): "../shared/data/fer2013/fer2013_dev.npz",
             ("ferplus", 800): "../shared/data/ferplus/ferplus_dev.npz",
             ("ferplus", 200): "../shared/data/ferplus/ferplus_dev.npz"}
SIMCLR = "benchmarks/checkpoints/simclr_fer2013_leaf_cnn4.pth"


def config_id(path: Path) -> str:
    return path.stem


def test_the_expected_configs_exist():
    names = {p.stem for p in CONFIGS}
    expected = {f"{alg}_{ds}_{n}_0" for alg in ALGORITHMS for ds, n in PAPER + list(CPU_SCALE)}
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("path", CONFIGS, ids=config_id)
def test_config_parses_and_names_registered_things(path):
    import semilearn.nets as nets
    from semilearn.core.utils import ALGORITHMS as REGISTERED

    import leaf_plugin  # noqa: F401  (registers algorithms, nets, datasets)
    from leaf_plugin.flags import base_parser
    from leaf_plugin.arguments import parse_train_args, algorithm_arguments
    from leaf_plugin.data import DATASETS

    raw = yaml.safe_load(path.read_text())
    args = parse_train_args(["--c", str(path)])
    known = {a.dest for a in base_parser()._actions} | {a.name.lstrip("-") for a in algorithm_arguments(args.algorithm)}
    assert not set(raw) - known, f"unknown keys {sorted(set(raw) - known)}"
    assert args.algorithm in REGISTERED
    assert args.dataset in DATASETS
    assert callable(getattr(nets, args.net, None)), f"net '{args.net}' is not registered"
    # named <algorithm>_<dataset>_<num_labels>_<seed>.yaml, and saved under that name
    assert path.stem == f"{args.algorithm}_{args.dataset}_{args.num_labels}_{args.seed}"
    assert args.save_name == path.stem
    assert args.num_classes == DATASETS[args.dataset].num_classes
    cpu_scale = (args.dataset, args.num_labels) in CPU_SCALE
    if cpu_scale:
        assert (args.net, args.img_size, args.aug_recipe, args.device) == ("leaf_cnn4", 48, "small", "cpu")
        assert (args.batch_size, args.uratio, args.eval_batch_size) == (16, 2, 256)
        assert args.num_workers <= 1 and args.data_dir == CPU_SCALE[args.dataset, args.num_labels]
        # FERPlus starts from the SimCLR checkpoint (FER2013's faces are FERPlus's), the most-voted labels
        assert args.pretrain_path == (SIMCLR if args.dataset == "ferplus" else "")
        assert args.dataset != "ferplus" or args.ferplus_label == "plurality"
        # long enough to converge, evaluated densely in the last fifth, EMA model with its own BN statistics
        assert args.num_train_iter == 6000 and 4 * args.num_eval_iter_tail < args.num_train_iter // 5  # 5 tail evaluations
        assert args.ema_bn == "ema" and (args.amp, args.channels_last, args.compile) == (True, True, True)
    else:  # paper scale
        assert (args.net, args.img_size, args.aug_recipe) == ("resnet18", 224, "released")
        assert (args.num_train_iter, args.epoch, args.batch_size, args.uratio) == (32000, 20, 16, 1)
        assert "pretrain_path" in raw
    # USB's 0.999 everywhere; the 2,000-step CPU runs correct its bias so the EMA model is not
    # 14 % random start (0.999 ** 2000)
    assert args.ema_m == 0.999 and args.ema_debias == cpu_scale
    if args.algorithm == "leaf":
        assert (args.optim, args.lr) == ("AdamW", 5e-4)


@pytest.mark.skipif(not FER_NPZ.is_file(), reason=f"the shared FER2013 npz is missing ({FER_NPZ}); "
                    "the CPU-scale configs read it from ../shared/data/fer2013/fer2013_dev.npz")
def test_cpu_config_trains_two_iterations(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the config's data_dir is relative to the repository root
    path = CONFIG_DIR / "leaf_fixmatch_fer2013_175_0.yaml"
    rc, out, err = run_cli(["train", "--c", path, "--num_train_iter", 2, "--num_eval_iter", 2,
                            "--save_dir", tmp_path, "--use_tensorboard", "false", "--progress", "false",
                            "--report", "false"], capsys)
    assert rc == 0, err[-2000:]
    result = json.loads((tmp_path / path.stem / "results.json").read_text())
    assert result["iterations"] == 2 and result["dataset"] == "fer2013" and result["num_labels"] == 175
    assert "unlabeled data number: 28709, labeled data number 175" in err + out


@pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"the shared FERPlus npz is missing ({FERPLUS_NPZ}); "
                    "the FERPlus configs read it from ../shared/data/ferplus/ferplus_dev.npz")
def test_ferplus_config_trains_two_iterations(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # data_dir and pretrain_path are relative to the repository root
    path = CONFIG_DIR / "leaf_freematch_ferplus_200_0.yaml"
    rc, out, err = run_cli(["train", "--c", path, "--num_train_iter", 2, "--num_eval_iter", 2,
                            "--save_dir", tmp_path, "--use_tensorboard", "false", "--progress", "false",
                            "--report", "false", "--compile", "false"], capsys)
    assert rc == 0, err[-2000:]
    result = json.loads((tmp_path / path.stem / "results.json").read_text())
    assert result["iterations"] == 2 and result["dataset"] == "ferplus" and result["num_labels"] == 200
    assert "unlabeled data number: 26937, labeled data number 200" in err + out
