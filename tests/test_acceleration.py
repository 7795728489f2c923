"""--channels_last, --compile and --amp (bf16 on the CPU): each changes the algorithm as
it says, trains, resumes exactly, and writes checkpoints that load without it."""
from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch

from conftest import TINY, assert_same_weights, run_cli, stop_and_resume


def build(*flags):
    from leaf_plugin.arguments import algorithm_from_argv

    return algorithm_from_argv(["--algorithm", "leaf_fixmatch", *TINY, "--save_dir", "/tmp/leaf_accel", *flags],
                               logging.getLogger("t"))


def first_batch(alg):
    random.seed(0), np.random.seed(0), torch.manual_seed(0)  # the same images and augmentations each time
    return alg.process_batch(**next(iter(alg.loader_dict["train_lb"])), **next(iter(alg.loader_dict["train_ulb"])))


def test_channels_last_puts_the_networks_and_every_image_view_in_nhwc():
    alg = build("--channels_last", "true")
    for model in (alg.model, alg.ema_model):
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = first_batch(alg)
    for key in ("x_lb", "x_ulb_w", "x_ulb_s", "x_ulb_w_2"):
        assert batch[key].is_contiguous(memory_format=torch.channels_last), key
    plain = first_batch(build())
    assert torch.equal(plain["x_lb"], batch["x_lb"])  # the same values, another layout


def test_amp_on_the_cpu_is_bf16_autocast_without_a_grad_scaler():
    alg = build("--amp", "true")
    assert alg.use_amp is False  # semilearn's GradScaler is CUDA-only
    with alg.amp_cm():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with build().amp_cm():
        assert not torch.is_autocast_enabled("cpu")


def test_compile_keeps_the_state_dict_keys():
    plain, compiled = build(), build("--compile", "true")
    assert list(compiled.model.state_dict()) == list(plain.model.state_dict())
    assert not any("_orig_mod" in k for k in compiled.get_save_dict()["model"])


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--channels_last", "true"], ["--amp", "true"], ["--compile", "true"]],
                         ids=["channels_last", "amp", "compile"])
def test_each_flag_trains_and_resumes_exactly(tmp_path, capsys, flags):
    whole, resumed = stop_and_resume(tmp_path, capsys, ["--algorithm", "leaf_fixmatch", *flags])
    assert_same_weights(whole, resumed)
    assert all(torch.isfinite(v).all() for v in whole[0].values() if v.is_floating_point())


@pytest.mark.slow
def test_a_checkpoint_written_with_every_flag_loads_and_evaluates_without_them(tmp_path, capsys):
    run = tmp_path / "fast"
    rc, _, err = run_cli(["train", "--algorithm", "leaf_fixmatch", *TINY, "--num_train_iter", "4",
                          "--num_eval_iter", "2", "--channels_last", "true", "--compile", "true", "--amp", "true",
                          "--save_dir", tmp_path, "--save_name", "fast"], capsys)
    assert rc == 0, err
    ckpt = torch.load(run / "latest_model.pth", map_location="cpu", weights_only=False)
    assert not any("_orig_mod" in k for k in ckpt["model"]) and ckpt["args"]["compile"] is True
    # eval rebuilds the run with its own flags unless told otherwise: here, all off
    rc, out, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--json", "--device", "cpu",
                            "--compile", "false", "--channels_last", "false", "--amp", "false"], capsys)
    assert rc == 0, err
    rc, out2, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--json", "--device", "cpu"], capsys)
    assert rc == 0, err
    import json
    a, b = json.loads(out.strip().splitlines()[-1]), json.loads(out2.strip().splitlines()[-1])
    assert a["top-1-acc"] == pytest.approx(b["top-1-acc"], abs=0.02)  # bf16 / layout may flip a borderline image
    # and a resume may switch the flags off
    rc, _, err = run_cli(["train", "--algorithm", "leaf_fixmatch", *TINY, "--num_train_iter", "6",
                          "--num_eval_iter", "2", "--save_dir", tmp_path, "--save_name", "fast", "--resume",
                          "--compile", "false", "--channels_last", "false", "--amp", "false"], capsys)
    assert rc == 0, err
    assert torch.load(run / "latest_model.pth", weights_only=False)["it"] == 6
