"""Loading a finished run: every checkpoint ``semilearn train`` writes loads in ``eval``, ``predict``,
``report`` and ``export``, through one reader that reads the file once; ``eval`` builds the
evaluation split only."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY, run_cli

ALGORITHMS = ("fixmatch", "flexmatch", "freematch", "leaf_fixmatch", "leaf_flexmatch", "leaf_freematch", "leaf")


def train(capsys, folder, name, *flags):
    rc, _, err = run_cli(["train", *TINY, "--num_train_iter", 2, "--num_eval_iter", 2, "--save_dir", folder,
                          "--save_name", name, *flags], capsys)
    assert rc == 0, err[-2000:]
    return folder / name


def picture(path, seed=0):
    from PIL import Image

    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (20, 20), dtype=np.uint8)).save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("compiled", ["false", "true"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_checkpoint_loads_in_eval_predict_report_and_export(tmp_path, capsys, algorithm, compiled):
    run = train(capsys, tmp_path, "run", "--algorithm", algorithm, "--compile", compiled)
    trained = json.loads((run / "results.json").read_text())
    for checkpoint in ("latest_model.pth", "model_best.pth"):
        rc, out, err = run_cli(["eval", "--load_path", run / checkpoint, "--json"], capsys)
        assert rc == 0, err[-2000:]
        if checkpoint == "latest_model.pth":  # the final EMA model, as training reported it
            assert json.loads(out)["top-1-acc"] == pytest.approx(trained["top1"], abs=1e-9)
    rc, out, err = run_cli(["predict", "--load_path", run / "latest_model.pth", "--json",
                            picture(tmp_path / "x.png")], capsys)
    assert rc == 0, err[-2000:]
    assert json.loads(out)["prediction"] in [str(d) for d in range(10)]
    rc, out, err = run_cli(["report", run, "--progress", "false"], capsys)
    assert rc == 0 and (run / "report.md").is_file(), err[-2000:]
    rc, out, err = run_cli(["export", "--load_path", run / "latest_model.pth", "--out", tmp_path / "m.onnx"], capsys)
    assert rc == 0 and (tmp_path / "m.onnx").is_file(), err[-2000:]


def test_each_command_reads_the_checkpoint_file_once(tmp_path, capsys, monkeypatch):
    import torch

    run = train(capsys, tmp_path, "run", "--algorithm", "leaf_fixmatch")
    reads = []
    real_load = torch.load

    def counting_load(f, *args, **kwargs):
        reads.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    ckpt = run / "latest_model.pth"
    commands = {"eval": ["eval", "--load_path", ckpt], "report": ["report", run, "--progress", "false"],
                "predict": ["predict", "--load_path", ckpt, picture(tmp_path / "x.png")],
                "export": ["export", "--load_path", ckpt, "--out", tmp_path / "m.onnx"]}
    for name, argv in commands.items():
        reads.clear()
        rc, _, err = run_cli(argv, capsys)
        assert rc == 0, err[-2000:]
        assert reads == [str(ckpt)], (name, reads)


def write_npz(path, n_train, n_val, seed):
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.integers(0, 255, (n_train, 48, 48), dtype=np.uint8),
             y_train=np.arange(n_train) % 7, x_val=rng.integers(0, 255, (n_val, 48, 48), dtype=np.uint8),
             y_val=np.arange(n_val) % 7)
    return path


def test_eval_builds_only_the_evaluation_split(tmp_path, capsys):
    """A run evaluated on another data set whose training part is empty: no labeled split is
    asked of it, and the metrics are the other test split's."""
    data = write_npz(tmp_path / "train.npz", 70, 14, 0)
    run = train(capsys, tmp_path, "run", "--algorithm", "fixmatch", "--dataset", "fer2013", "--data_dir", data,
                "--num_labels", 14, "--img_size", 48)
    other = write_npz(tmp_path / "posed.npz", 0, 21, 1)
    rc, out, err = run_cli(["eval", "--load_path", run / "latest_model.pth", "--data_dir", other, "--json"], capsys)
    assert rc == 0, err[-2000:]
    assert "has only" not in err and "unlabeled data number" not in err + out
    metrics = json.loads(out)
    assert 0.0 <= metrics["top-1-acc"] <= 1.0 and metrics["dataset"] == "fer2013"
    # the same through the loader: 21 evaluation images, no training split, the run's split sizes kept
    from leaf_plugin.runs import load_algorithm, open_run

    algorithm = load_algorithm(open_run(str(run / "latest_model.pth"), ["--data_dir", str(other)]))
    assert len(algorithm.dataset_dict["eval"]) == 21 and algorithm.dataset_dict["train_lb"] is None
    assert set(algorithm.loader_dict) == {"eval"} and algorithm.args.lb_dest_len == 14
