"""Reports: written at the end of training, and by ``semilearn report RUN_DIR``."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import TINY, run_cli

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_TINY = list(TINY)
REPORT_TINY[REPORT_TINY.index("--report") + 1] = "true"


def assert_png(path, max_bytes=400_000):
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) < max_bytes, (path, len(data))
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and min(img.size) >= 200


def train(folder, capsys, name, *extra):
    rc, out, err = run_cli(["train", *REPORT_TINY, "--num_train_iter", "2", "--num_eval_iter", "1",
                            "--save_dir", folder, "--save_name", name, *extra], capsys)
    assert rc == 0, err
    return folder / name


def test_leaf_run_report_after_training_and_from_the_folder(tmp_path, capsys):
    run = train(tmp_path, capsys, "leaf")
    for name in ("confusion_matrix.png", "curves.png", "experts.png"):
        assert_png(run / name)
    text = (run / "report.md").read_text()
    for link in ("](confusion_matrix.png)", "](curves.png)", "](experts.png)", "](per_class_accuracy.csv)"):
        assert link in text
    result = json.loads((run / "results.json").read_text())
    assert f"| top-1 accuracy | {100 * result['top1']:.2f} % |" in text
    assert f"| balanced accuracy | {100 * result['balanced_acc']:.2f} % |" in text
    assert "semantic and instance levels" in text
    with open(run / "per_class_accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == [str(d) for d in range(10)]
    assert sum(int(r["images"]) for r in rows) == 450
    assert sum(int(r["correct"]) for r in rows) == round(result["top1"] * 450)

    # the path-only variant: rebuild from the checkpoint, evaluate the EMA weights on the test split
    for name in ("confusion_matrix.png", "curves.png", "experts.png", "report.md"):
        (run / name).unlink()
    rc, out, err = run_cli(["report", run, "--device", "cpu", "--progress", "false"], capsys)
    assert rc == 0, err
    assert f"top-1 {100 * result['top1']:.2f} %" in out
    for name in ("confusion_matrix.png", "curves.png", "experts.png"):
        assert_png(run / name)
    assert f"| top-1 accuracy | {100 * result['top1']:.2f} % |" in (run / "report.md").read_text()


def test_host_run_report_has_no_experts_and_predict_works(tmp_path, capsys):
    run = train(tmp_path, capsys, "fixmatch", "--algorithm", "fixmatch")
    assert_png(run / "confusion_matrix.png")
    assert_png(run / "curves.png")
    assert not (run / "experts.png").exists()
    assert "Not a LEAF run" in (run / "report.md").read_text()
    # predict reads a plain host's checkpoint too
    from PIL import Image

    from leaf_plugin.data.digits import load_digits_32

    _, _, te_x, _ = load_digits_32(32)
    Image.fromarray(te_x[0]).save(tmp_path / "digit.png")
    rc, out, err = run_cli(["predict", "--load_path", run / "model_best.pth", tmp_path / "digit.png", "--json",
                            "--device", "cpu", "--progress", "false"], capsys)
    assert rc == 0, err
    row = json.loads(out)
    assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-9)


def test_history_keeps_the_last_row_of_a_repeated_iteration():
    from leaf_plugin.plots import history_series

    rows = [{"it": 1, "train/sup_loss": 3.0}, {"it": 2, "train/sup_loss": 2.0},
            {"it": 2, "train/sup_loss": 1.5, "eval/top-1-acc": 0.4}, {"it": 3, "train/sup_loss": float("nan")}]
    series = history_series(rows)
    assert series["train/sup_loss"][0].tolist() == [1, 2]
    assert series["train/sup_loss"][1].tolist() == [3.0, 1.5]
    assert series["eval/top-1-acc"][1].tolist() == [0.4]


def test_class_expert_means():
    from leaf_plugin.plots import class_expert_means

    gates = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    means = class_expert_means(gates, np.array([0, 0, 1]), 3)
    assert means[0].tolist() == [0.5, 0.5] and means[1].tolist() == [0.5, 0.5] and np.isnan(means[2]).all()


def test_report_of_a_missing_folder_is_exit_2(tmp_path, capsys):
    rc, out, err = run_cli(["report", tmp_path / "nope"], capsys)
    assert rc == 2 and "does not exist" in err
    rc, out, err = run_cli(["report", tmp_path], capsys)
    assert rc == 2 and "no latest_model.pth" in err
