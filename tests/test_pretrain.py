"""``semilearn pretrain`` (SimCLR): the training images without labels, checkpoints,
--resume, the backbone file --pretrain_path loads, and a linear probe."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli

# digits at 16 px: a few iterations take seconds on 2 cores
QUICK = ["--dataset", "digits", "--img_size", "16", "--batch_size", "32", "--device", "cpu", "--progress", "false",
         "--num_log_iter", "1"]


def pretrain(capsys, folder, name, *extra):
    rc, out, err = run_cli(["pretrain", *QUICK, "--save_dir", folder, "--save_name", name, *extra], capsys)
    assert rc == 0, err
    return folder / name


def test_training_images_are_unlabeled_pil_images():
    from PIL import Image

    from leaf_plugin.data.access import data_args, training_images

    images = training_images(data_args("digits", img_size=16))
    assert len(images) == 1347  # digits' training split (the test split is not touched)
    img = images[0]
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (16, 16)
    assert images.source.targets is None


def test_batch_views_are_random_crops_of_the_batch():
    from leaf_plugin.pretrain import BatchViews, step_generator

    views = BatchViews(16, (0.5,) * 3, (0.5,) * 3)
    batch = torch.randint(0, 256, (5, 1, 20, 20), dtype=torch.uint8)
    a = views(batch, step_generator(0, 3))
    b = views(batch, step_generator(0, 3))
    c = views(batch, step_generator(0, 4))
    assert a.shape == (5, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1.0 - 1e-6 and a.max() <= 1.0 + 1e-6


def test_pretrain_writes_a_backbone_that_train_loads(tmp_path, capsys):
    run = pretrain(capsys, tmp_path, "ssl", "--num_train_iter", "3", "--save_every", "2")
    for name in ("backbone.pth", "latest_model.pth", "log.txt", "metrics.jsonl", "results.json"):
        assert (run / name).is_file(), name
    backbone = torch.load(run / "backbone.pth", map_location="cpu", weights_only=True)
    from leaf_plugin.nets import SmallCNN

    expected = {k for k in SmallCNN(10).state_dict() if not k.startswith("classifier.")}
    assert set(backbone) == expected  # the backbone alone: no classifier, no projection head
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["it"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["pretrain/loss"]) for r in rows)
    assert json.loads((run / "results.json").read_text())["iterations"] == 3

    rc, out, err = run_cli(["train", *TINY, "--num_train_iter", "1", "--num_eval_iter", "1", "--lr", "1e-12",
                            "--pretrain_path", run / "backbone.pth", "--save_dir", tmp_path, "--save_name", "ft"],
                           capsys)
    assert rc == 0, err
    model = torch.load(tmp_path / "ft" / "latest_model.pth", map_location="cpu", weights_only=False)["model"]
    for key, value in backbone.items():
        if key.endswith(("weight", "bias")):
            assert torch.allclose(model["backbone." + key], value, atol=1e-6), key


def test_interrupted_run_resumes_exactly_and_folders_are_protected(tmp_path, capsys, monkeypatch):
    import leaf_plugin.losses

    whole = pretrain(capsys, tmp_path, "whole", "--num_train_iter", "4", "--save_every", "2")
    calls, nt_xent = [], leaf_plugin.losses.nt_xent

    def interrupted_in_step_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the third step, after the checkpoint of step 2
        return nt_xent(*args, **kwargs)

    monkeypatch.setattr(leaf_plugin.losses, "nt_xent", interrupted_in_step_3)
    rc, out, err = run_cli(["pretrain", *QUICK, "--save_dir", tmp_path, "--save_name", "part",
                            "--num_train_iter", "4", "--save_every", "2"], capsys)
    assert rc == 130
    monkeypatch.setattr(leaf_plugin.losses, "nt_xent", nt_xent)
    part = tmp_path / "part"
    assert torch.load(part / "latest_model.pth", weights_only=False)["it"] == 2
    rc, out, err = run_cli(["pretrain", *QUICK, "--save_dir", tmp_path, "--save_name", "part",
                            "--num_train_iter", "4"], capsys)
    assert rc == 2 and "already exists; pass --overwrite" in err
    pretrain(capsys, tmp_path, "part", "--num_train_iter", "4", "--save_every", "2", "--resume")
    a = torch.load(whole / "backbone.pth", weights_only=True)
    b = torch.load(part / "backbone.pth", weights_only=True)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    losses = lambda run: [json.loads(line)["pretrain/loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert losses(part) == pytest.approx(losses(whole), abs=1e-5)

    rc, out, err = run_cli(["pretrain", *QUICK, "--save_dir", tmp_path, "--save_name", "none", "--resume"], capsys)
    assert rc == 2 and "--resume" in err
    rc, out, err = run_cli(["pretrain", *QUICK, "--dataset", "cifar10", "--save_dir", tmp_path], capsys)
    assert rc == 2 and "semilearn's own" in err


def few_shot_probe(backbone, images, labels, test_images, test_labels, shots=(2, 5), repeats=10) -> float:
    """Mean test accuracy of a logistic-regression probe on the frozen pooled features,
    trained on ``shots`` labeled images per class (``repeats`` seeded draws each)."""
    from sklearn.linear_model import LogisticRegression

    def features(x):
        t = torch.from_numpy(x).float().div(255).sub(0.5).div(0.5)[:, None].expand(-1, 3, -1, -1)
        backbone.eval()
        with torch.no_grad():
            return backbone(t, only_feat=True).numpy()

    train_f, test_f = features(images), features(test_images)
    scores = []
    for k in shots:
        for rep in range(repeats):
            rng = np.random.RandomState(rep)
            idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False)
                                  for c in np.unique(labels)])
            mu, sd = train_f[idx].mean(0), train_f[idx].std(0) + 1e-6
            clf = LogisticRegression(max_iter=500).fit((train_f[idx] - mu) / sd, labels[idx])
            scores.append(clf.score((test_f - mu) / sd, test_labels))
    return float(np.mean(scores))


@pytest.mark.slow
def test_linear_probe_beats_a_random_backbone(tmp_path, capsys):
    from leaf_plugin.data.digits import load_digits_32
    from leaf_plugin.nets import SmallCNN
    from leaf_plugin.nets.pretrained import load_pretrained_backbone

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is as fast, and immune to busy neighbours
    try:
        run = pretrain(capsys, tmp_path, "probe", "--num_train_iter", "60", "--batch_size", "128", "--lr", "0.1",
                       "--seed", "0", "--num_log_iter", "20", "--save_every", "60")
    finally:
        torch.set_num_threads(threads)
    tr_x, tr_y, te_x, te_y = load_digits_32(16)  # the held-out split was never seen by pretraining
    torch.manual_seed(0)
    random_init = SmallCNN(10)  # the initialisation pretraining started from (same seed)
    torch.manual_seed(0)
    pretrained = SmallCNN(10)
    load_pretrained_backbone(pretrained, str(run / "backbone.pth"))
    base = few_shot_probe(random_init, tr_x, tr_y, te_x, te_y)
    ssl = few_shot_probe(pretrained, tr_x, tr_y, te_x, te_y)
    assert ssl > base + 0.03, (ssl, base)
