"""``semilearn export``: ONNX and TorchScript files whose logits match the PyTorch network on real
FER2013 faces, for a plain host and a LEAF-wrapped net; ``predict --model`` runs them."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli

PARITY = 1e-4  # fp32


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """2-iteration fixmatch and leaf_fixmatch runs on digits (16 px): their best checkpoints."""
    folder = tmp_path_factory.mktemp("export_runs")
    out = {}
    for name, algorithm in (("plain", "fixmatch"), ("leaf", "leaf_fixmatch")):
        rc, _, _ = run_cli(["train", *TINY, "--algorithm", algorithm, "--num_train_iter", "2", "--num_eval_iter", "2",
                            "--save_dir", folder, "--save_name", name])
        assert rc == 0
        out[name] = folder / name / "model_best.pth"
    return out


@pytest.fixture(scope="module")
def faces(tmp_path_factory, fer_faces):
    """Twelve FER2013 validation faces (two of each of six classes) as PNG files."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("export_faces")
    for i, face in enumerate(f for per_class in fer_faces["test"][:6] for f in per_class[:2]):
        Image.fromarray(face).save(folder / f"face{i:02d}.png")
    return folder


def batch_of(folder, transform):
    """The faces through ``transform`` (a run's: tensors; an export's: NumPy arrays), as one tensor."""
    from PIL import Image

    return torch.stack([torch.as_tensor(transform(Image.open(p).convert("RGB"))) for p in sorted(folder.glob("*.png"))])


@pytest.mark.parametrize("kind", ["plain", "leaf"])
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_exported_logits_match_pytorch_on_fer_faces(runs, faces, kind, fmt, suffix, tmp_path, capsys):
    from PIL import Image

    from leaf_plugin.deploy.export import LogitsOnly
    from leaf_plugin.deploy.exported import load_exported
    from leaf_plugin.layers import LeafNet
    from leaf_plugin.runs import load_predictor

    out = tmp_path / f"model{suffix}"
    rc, stdout, err = run_cli(["export", "--load_path", runs[kind], "--format", fmt, "--out", out], capsys)
    assert rc == 0, err
    assert stdout.startswith(f"wrote {out} and {out}.json")
    predictor = load_predictor(str(runs[kind]), "cpu")
    model = predictor.model
    assert isinstance(model, LeafNet) == (kind == "leaf")
    if kind == "leaf":
        assert model.semantic is not None and model.instance is not None  # both levels exported
    exported = load_exported(str(out), "cpu")
    batch = batch_of(faces, predictor.transform)
    assert torch.equal(batch, batch_of(faces, exported.transform))  # the JSON reproduces the transform
    with torch.no_grad():
        want = LogitsOnly(model)(batch)
        gates = model(batch)["leaf_gates"] if kind == "leaf" else {}
    outputs = exported.outputs(batch.numpy())
    gap = float(np.abs(outputs["logits"] - want.numpy()).max())
    print(f"{kind} {fmt}: max abs logit difference {gap:.3g}")
    assert gap <= PARITY
    assert sorted(outputs) == sorted(["logits", *(f"gates_{level}" for level in gates)])
    for level, weights in gates.items():  # a LEAF export also returns each level's gate weights
        assert np.abs(outputs[f"gates_{level}"] - weights.numpy()).max() <= PARITY
    probs, by_level = exported.classify([Image.open(p) for p in sorted(faces.glob("*.png"))])
    assert np.allclose(probs.sum(axis=1), 1) and sorted(by_level) == sorted(gates)

    meta = json.loads((tmp_path / f"model{suffix}.json").read_text())
    assert meta["gate_outputs"] == ({"semantic": "gates_semantic", "instance": "gates_instance"} if gates else {})
    assert meta["class_names"] == predictor.class_names and meta["input"]["size"] == [16, 16]
    assert meta["input"]["channels"] == 3 and len(meta["input"]["mean"]) == 3 and meta["format"] == fmt
    assert meta["checkpoint"] == str(runs[kind].resolve()) and meta["leaf"] == (kind == "leaf")


def test_predict_with_the_exported_model_matches_the_checkpoint(runs, faces, tmp_path, capsys):
    out = tmp_path / "fixed.onnx"
    rc, _, err = run_cli(["export", "--load_path", runs["leaf"], "--out", out, "--dynamic_batch", "false"], capsys)
    assert rc == 0, err
    import onnx

    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 16, 16]
    rows = {}
    for flag, path in (("--model", out), ("--load_path", runs["leaf"])):
        rc, stdout, err = run_cli(["predict", flag, path, "--json", faces, "--device", "cpu", "--progress", "false"],
                                  capsys)
        assert rc == 0, err
        rows[flag] = [json.loads(line) for line in stdout.strip().splitlines()]
    assert [r["path"] for r in rows["--model"]] == [r["path"] for r in rows["--load_path"]]
    for a, b in zip(rows["--model"], rows["--load_path"]):
        assert max(abs(a["probs"][k] - b["probs"][k]) for k in a["probs"]) < 1e-5


def test_bad_checkpoints_and_models_are_one_line_errors(runs, tmp_path, capsys):
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, other)
    rc, _, err = run_cli(["export", "--load_path", other, "--out", tmp_path / "x.onnx"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "other.pth" in err, err
    assert not (tmp_path / "x.onnx").exists()

    (tmp_path / "lonely.onnx").write_bytes(b"not onnx")
    rc, _, err = run_cli(["predict", "--model", tmp_path / "lonely.onnx", tmp_path], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "lonely.onnx.json" in err, err
    rc, _, err = run_cli(["predict", "--load_path", other, "--model", tmp_path / "lonely.onnx", tmp_path], capsys)
    assert rc == 2 and "both --load_path and --model given" in err


class SvdNet(torch.nn.Module):
    """Logits through an SVD, which ONNX opset 17 cannot express."""

    def forward(self, x):
        return {"logits": torch.linalg.svd(x.flatten(1)[:, :40].reshape(-1, 10, 4))[1]}


def test_a_net_that_cannot_be_exported_names_why(runs, tmp_path, capsys, monkeypatch):
    import leaf_plugin.cli.export as export_cmd
    from leaf_plugin.runs import load_predictor

    def with_svd(*args, **kwargs):
        predictor = load_predictor(*args, **kwargs)
        predictor.model = SvdNet()
        return predictor

    monkeypatch.setattr(export_cmd, "load_predictor", with_svd)
    rc, _, err = run_cli(["export", "--load_path", runs["plain"], "--out", tmp_path / "svd.onnx"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot be exported to onnx" in err and "linalg_svd" in err
