"""benchmarks/probes/head_probe.py: the head's numbers by hand, and the script on a run trained here."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import TINY, load_benchmark


def load_script():
    return load_benchmark("probes/head_probe")


def test_head_stats_by_hand():
    hp = load_script()
    feat = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    logits = torch.tensor([[math.log(99.0), 0.0], [0.0, math.log(3.0)]])  # probabilities (0.99, 0.01), (0.25, 0.75)
    stats = hp.head_stats(feat, logits, torch.tensor([1, 1]))
    assert stats["feature norm"] == pytest.approx(3.5)
    assert stats["logit spread"] == pytest.approx((math.log(99.0) + math.log(3.0)) / 2)
    assert stats["confidence"] == pytest.approx((0.99 + 0.75) / 2)
    assert stats["top-1"] == pytest.approx(0.5)  # the first is wrong, the second right
    assert stats["over"] == pytest.approx((0.99 - 0 + 0.75 - 1) / 2)
    assert stats[">= 0.95"] == pytest.approx(0.5)
    assert stats["right of those"] == 0.0
    assert math.isnan(hp.head_stats(feat, torch.zeros(2, 2), torch.tensor([0, 1]))["right of those"])


def test_probe_of_a_trained_run(tmp_path, capsys):
    from leaf_plugin.cli.main import main as semilearn
    from leaf_plugin.runs import load_predictor

    assert semilearn([*map(str, ["train", *TINY, "--num_train_iter", "2", "--num_eval_iter", "2",
                                 "--save_dir", tmp_path, "--save_name", "leaf"])]) == 0
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8), np.array([0, 1, 2, 3, 4])
    np.savez(tmp_path / "faces.npz", x_val=images, y_val=labels)
    hp = load_script()
    assert hp.main([str(tmp_path / "leaf"), "--npz", str(tmp_path / "faces.npz"), "--num", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 FER2013 val images" in out and "| leaf |" in out
    picked = np.random.default_rng(0).permutation(5)[:4]
    stats = hp.probe_run(str(tmp_path / "leaf"), images[picked], labels[picked], batch_size=3)  # two batches
    predictor = load_predictor(str(tmp_path / "leaf" / "latest_model.pth"), device="cpu")
    from PIL import Image
    with torch.no_grad():
        whole = predictor.model(torch.stack([predictor.transform(Image.fromarray(a)) for a in images[picked]]))
    assert stats == pytest.approx(hp.head_stats(whole["feat"], whole["logits"], torch.as_tensor(labels[picked])),
                                  nan_ok=True)
    assert stats["feature norm"] == pytest.approx(16.0, rel=0.5)  # LEAF: 16 times the instance level's output
    assert f"{stats['confidence']:.3f}" in out


def test_refusals_name_what_is_missing(tmp_path, capsys):
    hp = load_script()
    assert hp.main([str(tmp_path / "nowhere")]) == 2
    assert "has no latest_model.pth or model_best.pth" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "latest_model.pth").write_bytes(b"")
    assert hp.main([str(tmp_path / "run"), "--npz", str(tmp_path / "absent.npz")]) == 2
    assert "absent.npz does not exist; expected the FER2013 .npz" in capsys.readouterr().err
