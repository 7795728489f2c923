"""``semilearn predict``: a checkpoint trained here, on grey 48x48 FER2013 faces written as files."""
from __future__ import annotations

import json
import re

import pytest

from conftest import TINY, run_cli

DIGITS = [str(d) for d in range(10)]
LINE = re.compile(r"^(?P<path>.+): (?P<rest>.+)$")
ENTRY = re.compile(r"^(?P<name>\S+) \((?P<p>[01]\.\d{3})\)$")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-iteration leaf_fixmatch run on digits (16 px)."""
    from leaf_plugin.cli.main import main

    folder = tmp_path_factory.mktemp("predict_run")
    rc = main([*map(str, ["train", *TINY, "--num_train_iter", "2", "--num_eval_iter", "2",
                          "--save_dir", folder, "--save_name", "leaf"])])
    assert rc == 0
    return folder / "leaf"


@pytest.fixture(scope="module")
def faces(tmp_path_factory, fer_faces):
    """Six FER2013 faces (grey, 48x48; one of each of six classes) as PNG and JPEG files, a colour one
    in a sub-folder, and a text file."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("faces")
    x = [per_class[0] for per_class in fer_faces["test"][:6]]
    for i, img in enumerate(x):
        Image.fromarray(img).save(folder / f"face{i}.{'png' if i < 3 else 'jpg'}")
    sub = folder / "more"
    sub.mkdir()
    Image.fromarray(x[0]).convert("RGB").resize((100, 80)).save(sub / "colour.png")  # colour, not square
    (folder / "notes.txt").write_text("not an image and not an image name: ignored in folders")
    return folder


def test_text_output_for_a_folder_with_a_broken_file(run, faces, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    rc, out, err = run_cli(["predict", "--load_path", run / "model_best.pth", faces, broken,
                            "--device", "cpu", "--progress", "false"], capsys)
    assert rc == 1
    err_lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(err_lines) == 1 and "broken.png" in err_lines[0] and "cannot read" in err_lines[0], err
    lines = out.strip().splitlines()
    assert len(lines) == 7  # 6 faces + the colour one; notes.txt is not an image file
    for line in lines:
        m = LINE.match(line)
        assert m, line
        entries = m.group("rest").split(", ")
        assert len(entries) == 3  # --top defaults to 3
        probs = []
        for entry in entries:
            e = ENTRY.match(entry)
            assert e and e.group("name") in DIGITS, entry
            probs.append(float(e.group("p")))
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0015
    assert {LINE.match(line).group("path").split("/")[-1] for line in lines} == \
        {f"face{i}.{'png' if i < 3 else 'jpg'}" for i in range(6)} | {"colour.png"}


def test_json_lines_probabilities_sum_to_one(run, faces, capsys):
    files = sorted(str(p) for p in faces.glob("face*"))
    rc, out, err = run_cli(["predict", "--load_path", run / "latest_model.pth", *files, "--json", "--top", "4",
                            "--device", "cpu", "--progress", "false"], capsys)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["path"] for r in rows] == files
    for r in rows:
        assert set(r["probs"]) == set(DIGITS)
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-9)
        assert len(r["top"]) == 4
        assert [t["prob"] for t in r["top"]] == sorted((t["prob"] for t in r["top"]), reverse=True)
        assert r["prediction"] == r["top"][0]["class"] == DIGITS[r["index"]]
        assert r["top"][0]["prob"] == pytest.approx(max(r["probs"].values()))
        for t in r["top"]:
            assert r["probs"][t["class"]] == pytest.approx(t["prob"])


def test_predictions_match_the_evaluation_transform(run):
    """predict's pipeline gives the model's own eval output for a test image of its dataset."""
    import torch
    from PIL import Image

    from leaf_plugin.runs import load_predictor
    from leaf_plugin.data.digits import load_digits_32

    predictor = load_predictor(str(run / "model_best.pth"), "cpu")
    assert predictor.class_names == DIGITS and predictor.args.img_size == 16
    _, _, te_x, _ = load_digits_32(16)
    x = predictor.transform(Image.fromarray(te_x[0]))
    assert x.shape == (3, 16, 16)
    reference = (torch.from_numpy(te_x[0]).float() / 255 - 0.5) / 0.5
    assert torch.allclose(x[0], reference, atol=1e-6)


def test_missing_and_empty_inputs(run, tmp_path, capsys):
    rc, out, err = run_cli(["predict", "--load_path", run / "model_best.pth", tmp_path / "nope.png",
                            "--device", "cpu", "--progress", "false"], capsys)
    assert rc == 1 and "nope.png" in err and "does not exist" in err and out == ""
    (tmp_path / "empty").mkdir()
    rc, out, err = run_cli(["predict", "--load_path", run / "model_best.pth", tmp_path / "empty",
                            "--device", "cpu"], capsys)
    assert rc == 2 and "no image files" in err
    rc, out, err = run_cli(["predict", "--load_path", tmp_path / "none.pth", tmp_path, "--device", "cpu"], capsys)
    assert rc == 2 and "does not exist" in err


def test_a_dataset_eval_transform_hook_is_used_without_building_the_dataset(monkeypatch):
    """A dataset spec with ``eval_transform(args)`` is asked for the transform (no data read)."""
    from argparse import Namespace

    import torch
    from PIL import Image

    from leaf_plugin.data import DATASETS
    from leaf_plugin.data.access import eval_transform_for

    class Spec:
        name, num_classes, class_names, img_size = "hooked", 2, ("a", "b"), 8

        def build(self, args, alg):
            raise AssertionError("the dataset must not be built")

        def eval_transform(self, args):
            return lambda img: torch.full((3, args.img_size, args.img_size), float(img.size[0]))

    monkeypatch.setitem(DATASETS, "hooked", Spec())
    transform = eval_transform_for(Namespace(dataset="hooked", img_size=8, data_dir="/nonexistent"))
    out = transform(Image.new("L", (48, 48)))
    assert out.shape == (3, 8, 8) and float(out[0, 0, 0]) == 8.0  # resized to img_size first
