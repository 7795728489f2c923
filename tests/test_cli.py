"""The ``semilearn`` command: train/eval/resume on the CPU, override order, bad input."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY, run_cli, run_cli_subprocess


def train(tmp_path, capsys, *extra, name="run"):
    rc, out, err = run_cli(["train", *TINY, "--save_dir", tmp_path, "--save_name", name, *extra], capsys)
    assert rc == 0, err
    return tmp_path / name


def test_fixmatch_trains_evaluates_and_resumes_on_cpu(tmp_path, capsys):
    run = train(tmp_path, capsys, "--algorithm", "fixmatch", "--num_train_iter", "4", "--num_eval_iter", "2")
    result = json.loads((run / "results.json").read_text())
    assert result["iterations"] == 4 and 0.0 <= result["top1"] <= 1.0
    ckpt = torch.load(run / "latest_model.pth", map_location="cpu", weights_only=False)
    assert ckpt["it"] == 4 and "rng_state" in ckpt and "loader_position" in ckpt
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())

    rc, out, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--json", "--device", "cpu"], capsys)
    assert rc == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["top-1-acc"] == pytest.approx(result["top1"], abs=1e-12)
    assert metrics["balanced_acc"] == pytest.approx(result["balanced_acc"], abs=1e-12)

    # --weights model evaluates the trained weights: the same as a checkpoint whose EMA is the model
    rc, out, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--json", "--weights", "model"],
                           capsys)
    assert rc == 0, err
    raw = json.loads(out.strip().splitlines()[-1])
    swapped = dict(ckpt, ema_model=ckpt["model"])
    torch.save(swapped, run / "swapped.pth")
    rc, out, err = run_cli(["eval", "--load_path", run / "swapped.pth", "--json"], capsys)
    assert rc == 0, err
    expected = json.loads(out.strip().splitlines()[-1])
    assert raw["weights"] == "model" and raw["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert raw["top-1-acc"] == expected["top-1-acc"]

    # resume a finished 4-iteration run to 6 iterations
    rc, out, err = run_cli(["train", *TINY, "--algorithm", "fixmatch", "--save_dir", tmp_path, "--save_name", "run",
                            "--num_train_iter", "6", "--num_eval_iter", "2", "--resume"], capsys)
    assert rc == 0, err
    assert json.loads((run / "results.json").read_text())["iterations"] == 6


def test_embedded_default_is_digits_with_leaf_fixmatch(tmp_path, capsys):
    from leaf_plugin.arguments import parse_train_args

    args = parse_train_args([])
    assert (args.dataset, args.algorithm, args.net, args.num_classes, args.num_labels) == \
        ("digits", "leaf_fixmatch", "leaf_cnn4", 10, 40)
    run = train(tmp_path, capsys, "--num_train_iter", "2", "--num_eval_iter", "2")
    result = json.loads((run / "results.json").read_text())
    assert result["algorithm"] == "leaf_fixmatch" and result["dataset"] == "digits"
    log = (run / "log.txt").read_text()
    assert "unlabeled data number: 1347, labeled data number 40" in log
    assert "final EMA model: top-1" in log
    rc, out, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--json", "--device", "cpu"], capsys)
    assert rc == 0, err
    assert json.loads(out.strip().splitlines()[-1])["top-1-acc"] == pytest.approx(result["top1"], abs=1e-12)


def test_override_order_cli_over_config_over_defaults(tmp_path):
    from leaf_plugin.arguments import parse_train_args

    cfg = tmp_path / "c.yaml"
    cfg.write_text("algorithm: fixmatch\nbatch_size: 8\nuratio: 5\np_cutoff: 0.9\nnum_train_iter: 30\n")
    args = parse_train_args(["--c", str(cfg), "--batch_size", "4", "--p_cutoff", "0.7"])
    assert args.algorithm == "fixmatch"
    assert args.batch_size == 4          # command line beats config
    assert args.p_cutoff == 0.7          # algorithm flags too
    assert args.uratio == 5              # config beats default
    assert args.num_train_iter == 30
    assert args.lr == 0.03               # default
    args = parse_train_args(["--c", str(cfg), "--algorithm", "leaf_flexmatch"])
    assert args.algorithm == "leaf_flexmatch" and args.leaf_lambda_c == 0.1 and args.thresh_warmup is True


BAD_INPUT = [
    (["--algorithm", "nosuchmatch"], "unknown algorithm 'nosuchmatch'"),
    (["--net", "nosuchnet"], "unknown net 'nosuchnet'"),
    (["--dataset", "nosuchdata"], "unknown dataset 'nosuchdata'"),
    (["--c", "/nonexistent/config.yaml"], "config file '/nonexistent/config.yaml' does not exist"),
    (["--num_labels", "5000"], "class '0' has only"),
    (["--uratio", "0"], "--uratio is 0; expected a positive integer"),
    (["--batch_size", "-3"], "--batch_size is -3; expected a positive integer"),
    (["--batch_size", "abc"], "invalid int value: 'abc'"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    rc, out, err = run_cli(["train", *TINY, "--save_dir", tmp_path / "runs", *argv], capsys)
    assert rc == 2
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("body,message", [
    ("batch_size: abc\n", "key 'batch_size' has value 'abc' (str); expected int"),
    ("no_such_key: 3\n", "unknown key 'no_such_key'"),
    ("use_cat: maybe\n", "key 'use_cat' has value 'maybe'"),
    ("- a\n- b\n", "holds a list; expected a mapping"),
    ("a: [1,\n", "is not valid YAML"),
])
def test_bad_config_file(tmp_path, capsys, body, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    rc, out, err = run_cli(["train", *TINY, "--c", cfg, "--save_dir", tmp_path / "runs"], capsys)
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_existing_run_folder_is_not_overwritten(tmp_path, capsys):
    run = train(tmp_path, capsys, "--algorithm", "fixmatch", "--num_train_iter", "2", "--num_eval_iter", "2")
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    rc, out, err = run_cli(["train", *TINY, "--algorithm", "fixmatch", "--save_dir", tmp_path, "--save_name", "run",
                            "--num_train_iter", "2"], capsys)
    assert rc == 2 and "already exists; pass --overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    train(tmp_path, capsys, "--algorithm", "fixmatch", "--num_train_iter", "2", "--num_eval_iter", "2",
          "--overwrite")


def test_command_line_exit_codes_in_a_fresh_process(tmp_path):
    proc = run_cli_subprocess(["train", "--algorithm", "nosuchmatch", "--save_dir", tmp_path])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert "unknown algorithm 'nosuchmatch'; expected one of:" in proc.stderr and "fixmatch" in proc.stderr
    proc = run_cli_subprocess(["list"])
    assert proc.returncode == 0
    for name in ("leaf_fixmatch", "leaf_flexmatch", "leaf_freematch", "leaf", "fixmatch", "leaf_cnn4", "digits"):
        assert f"  {name}" in proc.stdout
    proc = run_cli_subprocess(["train", "--help"])
    assert proc.returncode == 0 and "--leaf_lambda_amb" in proc.stdout and "--multiprocessing-distributed" in proc.stdout


def test_ema_start_warning_names_the_share_and_a_momentum_that_fits():
    from leaf_plugin.runtime import ema_start_warning

    # 0.999 ** 1200 = 0.301: the evaluated model would be 30 % initial weights
    msg = ema_start_warning(0.999, 1200)
    assert "30 % of the initial weights" in msg and "--ema_m 0.9962" in msg  # 0.01 ** (1/1200) = 0.99617
    assert ema_start_warning(0.99, 1200) is None      # 0.99 ** 1200 = 5.8e-6
    assert ema_start_warning(0.999, 32000) is None    # the paper-scale configs
    assert ema_start_warning(0.0, 10) is None and ema_start_warning(0.999, 0) is None


@pytest.mark.parametrize("written,expected", [("1", True), ("0", False), ("true", True), ("no", False)])
def test_boolean_config_values_accept_0_and_1_as_usb_yaml_files_write_them(tmp_path, written, expected):
    from leaf_plugin.arguments import parse_train_args

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"algorithm: fixmatch\nuse_cat: {written}\n")
    assert parse_train_args(["--c", str(cfg)]).use_cat is expected


@pytest.mark.parametrize("written", ["2", "[1]", "maybe", "0.5"])
def test_other_boolean_config_values_are_one_line_exit_2_naming_the_key(tmp_path, capsys, written):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"algorithm: fixmatch\nuse_cat: {written}\n")
    rc, out, err = run_cli(["train", *TINY, "--c", cfg, "--save_dir", tmp_path / "runs"], capsys)
    assert rc == 2
    assert "key 'use_cat'" in err and "expected true or false (or 0 / 1)" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_console_line_holds_the_loss_terms_mask_and_lr_not_each_expert():
    from types import SimpleNamespace

    from leaf_plugin.runtime.hooks import console_line

    log = {"train/sup_loss": 1.23456, "train/unsup_loss": 0.5, "train/leaf_amb_loss": 0.25,
           "train/leaf_con_loss": 0.125, "train/leaf_balance_loss": 0.01, "train/total_loss": 2.0,
           "train/leaf_mask_ratio": 0.4375, "train/mask_ratio": 0.9, "lr": 0.0299,
           "train/leaf_semantic_expert0": 0.5, "train/run_time": 0.2,
           "eval/top-1-acc": 0.4567, "eval/balanced_acc": 0.4}
    alg = SimpleNamespace(log_dict=log, it=49, num_train_iter=600, best_eval_acc=0.5, best_it=19)
    assert console_line(alg, evaluated=False) == (
        "it 50/600 | sup_loss 1.2346 unsup_loss 0.5000 leaf_amb_loss 0.2500 leaf_con_loss 0.1250 "
        "leaf_balance_loss 0.0100 | mask 0.438 | lr 0.0299")
    assert console_line(alg, evaluated=True).endswith(
        "| eval top-1 45.67 %, balanced 40.00 % (best 50.00 % at it 20)")


def test_eval_of_a_run_older_than_a_leaf_flag_rebuilds_its_own_head(tmp_path, capsys):
    """A checkpoint written before --leaf_learn_scale existed had a fixed head scale: ``eval``
    rebuilds that, not the learned scale leaf_flexmatch defaults to now."""
    run = train(tmp_path, capsys, "--algorithm", "leaf_flexmatch", "--num_train_iter", "2", "--num_eval_iter", "2",
                "--leaf_learn_scale", "false")
    ckpt = torch.load(run / "latest_model.pth", map_location="cpu", weights_only=False)
    for saved in (ckpt["args"], ckpt["leaf_args"]):
        del saved["leaf_learn_scale"]
    del ckpt["leaf_config"]["learn_scale"]
    torch.save(ckpt, run / "older.pth")
    rc, out, err = run_cli(["eval", "--load_path", run / "older.pth", "--json", "--device", "cpu"], capsys)
    assert rc == 0, err
    result = json.loads((run / "results.json").read_text())
    assert json.loads(out.strip().splitlines()[-1])["top-1-acc"] == pytest.approx(result["top1"], abs=1e-12)
    # resuming it under the new default names the difference instead of a missing key
    rc, out, err = run_cli(["train", *TINY, "--algorithm", "leaf_flexmatch", "--save_dir", tmp_path, "--save_name",
                            "run", "--num_train_iter", "4", "--num_eval_iter", "2", "--resume", "--load_path",
                            run / "older.pth"], capsys)
    assert rc == 2 and "leaf learn_scale=False, this run has True" in err
