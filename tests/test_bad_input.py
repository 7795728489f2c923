"""Bad input, systematically: one table of malformed config files, command-line values,
dataset files and checkpoints.  Each must give exit code 2, one error line, no traceback,
and leave the save directory exactly as it was (absent, or unchanged)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY, run_cli


# ---- fixtures: a valid RAF-DB tree, a valid FER2013 npz, a 10-class checkpoint --------------------
def make_rafdb(root: Path, per_class: int = 3) -> Path:
    rng = np.random.RandomState(0)
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    lines = []
    for split, n in (("train", per_class), ("test", 1)):
        for label in range(1, 8):
            for i in range(n):
                name = f"{split}_{label}{i:04d}.jpg"
                img = (rng.rand(24, 24, 3) * 255).astype(np.uint8)
                Image.fromarray(img).save(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"))
                lines.append(f"{name} {label}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def make_npz(path: Path, **override) -> Path:
    rng = np.random.RandomState(0)
    arrays = dict(x_train=(rng.rand(70, 48, 48) * 255).astype(np.uint8), y_train=np.repeat(np.arange(7), 10),
                  x_val=(rng.rand(14, 48, 48) * 255).astype(np.uint8), y_val=np.repeat(np.arange(7), 2))
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    make_rafdb(root / "rafdb")
    make_npz(root / "fer.npz")
    rc, _, _ = run_cli(["train", *TINY, "--algorithm", "fixmatch", "--num_train_iter", "1", "--num_eval_iter", "1",
                        "--save_dir", root / "runs", "--save_name", "digits10"])
    assert rc == 0
    (root / "garbage.pth").write_bytes(b"\x00\x01 this is not a checkpoint")
    (root / "empty.pth").write_bytes(b"")
    return root


def rafdb_with(assets: Path, tmp: Path, change) -> Path:
    root = tmp / "rafdb"
    shutil.copytree(assets / "rafdb", root)
    change(root)
    return root


def label_file(root: Path) -> Path:
    return root / "EmoLabel" / "list_patition_label.txt"


def first_image(root: Path) -> Path:
    return sorted((root / "Image" / "aligned").iterdir())[0]


# each case: (id, argv builder(assets, tmp) -> list, expected text in the error line)
CASES = [
    # config files
    ("config-missing", lambda a, t: ["--c", t / "nope.yaml"], "does not exist; expected a YAML file"),
    ("config-not-yaml", lambda a, t: ["--c", write(t / "c.yaml", "a: [1,\n")], "is not valid YAML"),
    ("config-a-list", lambda a, t: ["--c", write(t / "c.yaml", "- 1\n- 2\n")], "expected a mapping"),
    ("config-unknown-key", lambda a, t: ["--c", write(t / "c.yaml", "batchsize: 4\n")], "unknown key 'batchsize'"),
    ("config-wrong-type", lambda a, t: ["--c", write(t / "c.yaml", "uratio: three\n")], "key 'uratio'"),
    ("config-wrong-bool", lambda a, t: ["--c", write(t / "c.yaml", "use_cat: maybe\n")], "key 'use_cat'"),
    ("config-bad-choice", lambda a, t: ["--c", write(t / "c.yaml", "optim: Adam\n")], "key 'optim'"),
    ("config-bad-value", lambda a, t: ["--c", write(t / "c.yaml", "epoch: 0\n")], "--epoch is 0"),
    # command-line values
    ("unknown-algorithm", lambda a, t: ["--algorithm", "fixmach"], "unknown algorithm 'fixmach'"),
    ("unknown-net", lambda a, t: ["--net", "resnet7"], "unknown net 'resnet7'"),
    ("unknown-dataset", lambda a, t: ["--dataset", "cifar11"], "unknown dataset 'cifar11'"),
    ("uratio-zero", lambda a, t: ["--uratio", "0"], "--uratio is 0; expected a positive integer"),
    ("uratio-negative", lambda a, t: ["--uratio", "-2"], "--uratio is -2"),
    ("batch-zero", lambda a, t: ["--batch_size", "0"], "--batch_size is 0"),
    ("batch-not-int", lambda a, t: ["--batch_size", "four"], "invalid int value: 'four'"),
    ("num-labels-too-many", lambda a, t: ["--num_labels", "2000"], "has only"),
    ("num-labels-zero", lambda a, t: ["--num_labels", "0"], "--num_labels is 0"),
    ("lr-zero", lambda a, t: ["--lr", "0"], "--lr is 0.0; expected a positive number"),
    ("epoch-not-divisor", lambda a, t: ["--epoch", "3", "--num_train_iter", "10"], "not divisible by --epoch 3"),
    ("device-unknown", lambda a, t: ["--device", "tpu"], "invalid choice: 'tpu'"),
    ("classes-mismatch", lambda a, t: ["--num_classes", "7"], "does not match dataset 'digits'"),
    ("leaf-top-k", lambda a, t: ["--leaf_top_k", "9"], "top_k"),
    ("leaf-amb-on", lambda a, t: ["--leaf_amb_on", "some"],
     "argument --leaf_amb_on: invalid choice: 'some' (choose from 'rejected', 'all', 'unconfident')"),
    ("leaf-host-view", lambda a, t: ["--leaf_host_view", "both"], "argument --leaf_host_view: invalid choice: 'both'"),
    ("leaf-min-pos", lambda a, t: ["--leaf_min_pos", "4"], "--leaf_min_pos must be in 1..max_pos (3), got 4"),
    ("leaf-confidence", lambda a, t: ["--leaf_confidence", "1.5"], "--leaf_confidence must be in (0, 1], got 1.5"),
    ("leaf-expert-init", lambda a, t: ["--leaf_expert_init", "ones"], "argument --leaf_expert_init: invalid choice"),
    ("pretrain-missing", lambda a, t: ["--pretrain_path", t / "none.pth"], "does not exist"),
    # dataset files
    ("data-dir-missing", lambda a, t: ["--dataset", "rafdb", "--data_dir", t / "absent"], "does not exist"),
    ("label-file-empty", lambda a, t: rafdb(a, t, lambda r: label_file(r).write_text("")), "list_patition_label"),
    ("label-file-truncated", lambda a, t: rafdb(a, t, lambda r: label_file(r).write_text(
        label_file(r).read_text()[:-3])), "expected 'NAME.jpg LABEL'"),
    ("label-out-of-range", lambda a, t: rafdb(a, t, lambda r: label_file(r).write_text(
        label_file(r).read_text().replace("train_10000.jpg 1", "train_10000.jpg 9"))), "out of range"),
    ("image-zero-bytes", lambda a, t: rafdb(a, t, lambda r: first_image(r).write_bytes(b"")), "_aligned.jpg"),
    ("image-undecodable", lambda a, t: rafdb(a, t, lambda r: first_image(r).write_bytes(b"\xff\xd8 garbage" * 9)),
     "_aligned.jpg"),
    ("image-missing", lambda a, t: rafdb(a, t, lambda r: first_image(r).unlink()), "_aligned.jpg"),
    ("npz-missing-key", lambda a, t: ["--dataset", "fer2013", "--data_dir", make_npz(t / "f.npz", y_val=None),
                                      "--num_labels", "14"], "y_val"),
    ("npz-wrong-image-shape", lambda a, t: ["--dataset", "fer2013", "--num_labels", "14", "--data_dir",
                                            make_npz(t / "f.npz", x_train=np.zeros((70, 48), np.uint8))], "x_train"),
    ("imagefolder-missing-class", lambda a, t: imagefolder_without_train_class(t), "has no counterpart"),
    # checkpoints
    ("resume-no-checkpoint", lambda a, t: ["--resume", "--load_path", t / "absent.pth"], "does not exist"),
    ("resume-unreadable", lambda a, t: ["--resume", "--load_path", a / "garbage.pth"], "is unreadable"),
    ("resume-empty-file", lambda a, t: ["--resume", "--load_path", a / "empty.pth"], "is unreadable"),
    ("resume-other-classes", lambda a, t: ["--resume", "--dataset", "fer2013", "--num_labels", "14", "--data_dir",
                                           a / "fer.npz", "--algorithm", "fixmatch", "--load_path",
                                           a / "runs" / "digits10" / "latest_model.pth"],
     "was trained for 10 classes but this run has 7"),
    ("resume-other-algorithm", lambda a, t: ["--resume", "--load_path", a / "runs" / "digits10" / "latest_model.pth",
                                             "--algorithm", "leaf_fixmatch"], "does not fit this model"),
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rafdb(assets, tmp, change):
    return ["--dataset", "rafdb", "--data_dir", rafdb_with(assets, tmp, change), "--num_labels", "14",
            "--img_size", "16"]


def imagefolder_without_train_class(tmp: Path):
    for split, classes in (("train", ("a", "b")), ("test", ("a", "c"))):
        for c in classes:
            (tmp / "if" / split / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp / "if" / split / c / f"{i}.png")
    return ["--dataset", "imagefolder", "--data_dir", tmp / "if", "--num_labels", "2", "--img_size", "16"]


def snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_the_table_has_at_least_25_cases():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, assets, tmp_path, capsys):
    name, build, expected = case
    save_dir = tmp_path / "runs"
    existing = save_dir / "earlier"  # a run folder that must survive untouched
    existing.mkdir(parents=True)
    (existing / "log.txt").write_text("an earlier run\n")
    before = snapshot(save_dir)
    argv = [str(a) for a in build(assets, tmp_path)]
    rc, out, err = run_cli(["train", *TINY, "--num_train_iter", "2", "--num_eval_iter", "2", "--save_dir", save_dir,
                            *argv], capsys)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert rc == 2, (name, rc, err[-2000:])
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], err[-2000:]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in out + err
    assert snapshot(save_dir) == before


def test_checkpoint_errors_in_eval_and_predict(assets, capsys):
    for command in (["eval", "--load_path"], ["predict", "--load_path"]):
        rc, out, err = run_cli([*command, assets / "garbage.pth", *(["x.png"] if command[0] == "predict" else [])],
                               capsys)
        assert rc == 2 and "unreadable" in err and "Traceback" not in err, err
