"""The model shipped in ``benchmarks/checkpoints/`` (``benchmarks/ship_model.py``): small files, a
sidecar that says which run it is and its accuracy, used by ``predict`` and ``serve`` when no model
is given; its export agrees with its checkpoint, and the sidecar's accuracy is what eval measures."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from conftest import REPO, run_cli
from helpers.face_pictures import FERPLUS_NPZ, picture_with_faces

SIDECAR = REPO / "benchmarks" / "checkpoints" / "ferplus_leaf_fixmatch_s0.json"
FERPLUS_CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
needs_faces = pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"shared FERPlus faces not found at {FERPLUS_NPZ}")


@pytest.fixture(scope="module")
def sidecar():
    return json.loads(SIDECAR.read_text())


def test_the_shipped_files_are_small_and_describe_themselves(sidecar):
    import torch

    folder = SIDECAR.parent
    files = {k: folder / v for k, v in sidecar["files"].items()}
    assert all(p.is_file() for p in files.values()), files
    assert files["checkpoint"].stat().st_size < 4 * 2**20 and files["onnx"].stat().st_size < 4 * 2**20
    checkpoint = torch.load(files["checkpoint"], map_location="cpu", weights_only=False)
    assert "optimizer" not in checkpoint and "rng_state" not in checkpoint
    assert checkpoint["model"] is checkpoint["ema_model"]  # stored once
    assert checkpoint["args"]["algorithm"] == sidecar["algorithm"] == "leaf_fixmatch"
    assert sidecar["class_names"] == FERPLUS_CLASSES == json.loads(files["onnx_json"].read_text())["class_names"]
    accuracy = sidecar["accuracy"]
    assert accuracy["split"] == "FERPlus Valid" and 0 < accuracy["top1"] < 1 and 0 < accuracy["balanced_acc"] < 1
    shipped = f"benchmarks/checkpoints/{files['checkpoint'].name}"
    assert accuracy["command"].startswith(f"semilearn eval --load_path {shipped}")
    # the FERPlus headline's leaf_fixmatch at seed 0, at its default: the learned head scale
    assert sidecar["run"]["folder"].startswith("study_learn_scale_leaf_fixmatch_s0_") and sidecar["seed"] == 0
    assert checkpoint["args"]["leaf_learn_scale"] is True and "--leaf_learn_scale true" in sidecar["run"]["trained_with"]


@needs_faces
def test_predict_without_a_model_uses_the_shipped_one(sidecar, tmp_path, capsys):
    from PIL import Image

    picture = tmp_path / "one.png"
    Image.fromarray(picture_with_faces(1)[0]).save(picture)
    rc, out, err = run_cli(["predict", "--detect_faces", "--json", picture], capsys)
    assert rc == 0
    assert err.strip() == (f"semilearn predict: no --load_path or --model: using the shipped model: onnx "
                           f"{SIDECAR.with_suffix('.onnx')} (leaf_fixmatch on ferplus, 8 classes, 48 px input; "
                           f"FERPlus Valid top-1 {100 * sidecar['accuracy']['top1']:.2f} %)")
    record = json.loads(out)
    assert record["num_faces"] == 1 and record["faces"][0]["prediction"] in FERPLUS_CLASSES
    assert set(record["faces"][0]["gates"]) == {"semantic", "instance"}


@needs_faces
def test_the_shipped_export_agrees_with_its_checkpoint(sidecar):
    from PIL import Image

    from helpers.face_pictures import face_pool
    from leaf_plugin.deploy.models import load_model

    faces = [Image.fromarray(f) for f in face_pool()[:32]]
    onnx = load_model(device="cpu")
    checkpoint = load_model(load_path=str(SIDECAR.with_suffix(".pth")), device="cpu")
    assert onnx.info["shipped"] == sidecar and onnx.info["kind"] == "onnx"
    (p_onnx, g_onnx), (p_ckpt, g_ckpt) = onnx.predictor.classify(faces), checkpoint.predictor.classify(faces)
    assert np.abs(p_onnx - p_ckpt).max() < 1e-5 and (p_onnx.argmax(1) == p_ckpt.argmax(1)).all()
    for level in ("semantic", "instance"):
        assert np.abs(g_onnx[level] - g_ckpt[level]).max() < 1e-5


@pytest.mark.slow
@pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"shared FERPlus faces not found at {FERPLUS_NPZ}")
def test_the_sidecar_accuracy_is_what_eval_measures(sidecar, capsys, monkeypatch):
    """The sidecar's own command, run again: the same FERPlus Valid top-1 and balanced accuracy."""
    monkeypatch.chdir(REPO)  # the command's paths are relative to the repository root
    argv = shlex.split(sidecar["accuracy"]["command"])[1:]
    rc, out, err = run_cli([*argv, "--progress", "false"], capsys)
    assert rc == 0, err
    measured = json.loads(out.strip().splitlines()[-1])
    assert measured["top-1-acc"] == pytest.approx(sidecar["accuracy"]["top1"], abs=1e-9)
    assert measured["balanced_acc"] == pytest.approx(sidecar["accuracy"]["balanced_acc"], abs=1e-9)
