"""FER datasets (rafdb, ferplus, affectnet7/8, fer2013, imagefolder): every on-disk layout,
built in tmp_path from a few real faces of the shared FER2013 npz, read through the real
``semilearn train`` command, and every error it reports."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

from conftest import FER_NPZ, run_cli

FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
RAF = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
RAF_TO_FER = (5, 2, 1, 3, 4, 0, 6)
FERPLUS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
FERPLUS_COLS = FERPLUS + ("unknown", "NF")
FERPLUS_TO_FER = (6, 3, 5, 4, 0, 1, 2, 6)  # contempt: any face will do
AFFECTNET = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
AFFECTNET_TO_FER = (6, 3, 4, 5, 2, 1, 0, 6)  # contempt: any face will do

needs_npz = pytest.mark.skipif(not FER_NPZ.is_file(), reason=f"shared FER2013 faces not found at {FER_NPZ}")

# tiny and fast: 32 px, 4 labeled + 4 unlabeled per step, 2 iterations
RUN = ["--device", "cpu", "--use_tensorboard", "false", "--progress", "false", "--report", "false",
       "--num_train_iter", "2", "--num_eval_iter", "2", "--num_log_iter", "1", "--batch_size", "4",
       "--uratio", "1", "--eval_batch_size", "64", "--num_workers", "0", "--net", "leaf_cnn4",
       "--img_size", "32", "--aug_recipe", "small"]


# ---- faces and layouts ------------------------------------------------------------------
@pytest.fixture
def faces(fer_faces):
    """The shared faces by class (conftest's ``fer_faces``): the layouts below are written from them."""
    return fer_faces


def save(img: np.ndarray, path, mode="L"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(img)
    if mode == "RGB":
        im = Image.merge("RGB", (im, im.point(lambda v: v // 2), im))
    im.save(path)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def make_rafdb(root, faces, n_train=10, n_test=4, label_of=None):
    """RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/*_aligned.jpg (grey JPEG)."""
    lines = []
    for split, n in (("train", n_train), ("test", n_test)):
        i = 0
        for raf in range(7):
            for k in range(n):
                i += 1
                name = f"{split}_{i:05d}.jpg" if split == "train" else f"{split}_{i:04d}.jpg"
                save(faces[split][RAF_TO_FER[raf]][k], root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"))
                lines.append(f"{name} {raf + 1}")
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def pixels(img):
    return " ".join(str(int(v)) for v in img.ravel())


def make_fer2013_csv(root, faces, n_train=10, n_test=4, n_private=2):
    rows = []
    for usage, split, n in (("Training", "train", n_train), ("PublicTest", "test", n_test),
                            ("PrivateTest", "test", n_private)):
        for c in range(7):
            for k in range(n):
                rows.append([c, pixels(faces[split][c][-1 - k if usage == "PrivateTest" else k]), usage])
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"], rows)
    return root


# FERPlus vote rows (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF)
# with the label the majority rule and the plurality rule must give (None: dropped)
SPECIAL_VOTES = [
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None, None),  # tie: no majority, no plurality
    ([3, 0, 0, 0, 0, 0, 0, 0, 7, 0], None, None),  # unknown wins
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None, None),  # not a face
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None, None),  # only single votes: nothing left; a tie of eight
    ([4, 1, 1, 1, 1, 1, 1, 0, 0, 0], 0, 0),        # 4 of 10, but 4 of 4 once single votes go
    ([0, 0, 0, 0, 4, 2, 2, 0, 0, 0], None, 4),     # 4 of 8: not more than half, but the most votes
    ([0, 0, 0, 0, 5, 2, 2, 0, 0, 0], 4, 4),        # 5 of 9
    ([0, 0, 0, 0, 0, 0, 0, 2, 2, 0], None, None),  # contempt and unknown tie
    ([0, 6, 0, 0, 0, 0, 0, 0, 2, 2], 1, 1),        # 6 of 10, above unknown and NF
    ([0, 4, 0, 0, 0, 0, 0, 0, 3, 3], None, 1),     # 4 of 10: no majority, but above unknown and NF
]


def clean_votes(label, k):
    votes = [0] * 10
    votes[label] = 8
    votes[(label + 1 + k) % 8] = 1  # a single vote elsewhere, always dropped
    votes[8 + k % 2] = 1
    return votes


def make_ferplus(root, faces, per_class=(6, 3, 4)):
    """fer2013.csv + fer2013new.csv: per class 6 Training, 3 PublicTest and 4 PrivateTest clean
    majorities, then SPECIAL_VOTES as Training rows and one row with no image name."""
    px, votes, expected = [], [], {"train": [], "test": []}
    for usage, n in zip(("Training", "PublicTest", "PrivateTest"), per_class):
        for label in range(8):
            for k in range(n):
                face = faces["train" if usage == "Training" else "test"][FERPLUS_TO_FER[label]][k]
                px.append([0, pixels(face), usage])
                votes.append([usage, f"fer{len(votes):07d}.png"] + clean_votes(label, k))
                expected["test" if usage == "PrivateTest" else "train"].append(label)
    expected["train_plurality"] = list(expected["train"])
    for i, (v, label, plurality) in enumerate(SPECIAL_VOTES):
        px.append([0, pixels(faces["train"][0][i]), "Training"])
        votes.append(["Training", f"fer{len(votes):07d}.png"] + v)
        if label is not None:
            expected["train"].append(label)
        if plurality is not None:
            expected["train_plurality"].append(plurality)
    px.append([0, pixels(faces["train"][1][0]), "Training"])
    votes.append(["Training", ""] + [10, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # no image name: removed by FERPlus
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"], px)
    write_csv(root / "fer2013new.csv", ["Usage", "Image name"] + list(FERPLUS_COLS), votes)
    return expected


def make_affectnet(root, faces, n_train=10, n_test=4, images="Manually_Annotated_Images", val_header=False):
    """training.csv (with header) and validation.csv (without, as some releases ship it); PNG
    images in numbered sub-folders; expressions 8..10 listed with no image file at all."""
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    expected = {}
    for csv_name, split, n in (("training.csv", "train", n_train), ("validation.csv", "test", n_test)):
        rows, labels = [], []
        for expr in range(11):
            for k in range(n if expr < 8 else 2):
                rel = f"{100 + expr}/{split}_{expr}_{k}.png"
                if expr < 8:
                    save(faces[split][AFFECTNET_TO_FER[expr]][k], root / images / rel if images else root / rel)
                    labels.append(expr)
                rows.append([rel, 0, 0, 48, 48, "1;2;3", expr, 0.1, -0.2])
        write_csv(root / csv_name, header if (split == "train" or val_header) else None, rows)
        expected[split] = labels
    return expected


def make_tree(root, faces, classes, mapping, n_train=10, n_test=4, mode="L", ext=".png"):
    for split, n in (("train", n_train), ("test", n_test)):
        for name, c in zip(classes, mapping):
            for k in range(n):
                save(faces[split][c][k], root / split / name / f"{k:03d}{ext}", mode)
    return root


# ---- helpers ----------------------------------------------------------------------------
def build(argv, alg="fixmatch"):
    """(args, dataset_dict) through the real parser and the registered builder."""
    from leaf_plugin.arguments import parse_train_args
    from leaf_plugin.data import get_dataset_spec

    args = parse_train_args(list(map(str, argv)) + ["--device", "cpu"])
    return args, get_dataset_spec(args.dataset).build(args, alg)


def counts(targets, n):
    return np.bincount(np.asarray(targets), minlength=n).tolist()


def train(capsys, tmp_path, dataset, data_dir, algorithm, num_labels, *extra):
    save_dir = tmp_path / "runs"
    rc, out, err = run_cli(["train", "--algorithm", algorithm, "--dataset", dataset, "--data_dir", data_dir,
                            "--num_labels", num_labels, "--save_dir", save_dir, "--save_name", "run", *RUN,
                            *extra], capsys)
    log = (save_dir / "run" / "log.txt").read_text() if (save_dir / "run" / "log.txt").exists() else ""
    assert rc == 0, err[-2000:]
    assert (save_dir / "run" / "results.json").is_file()
    return log


def fails(capsys, tmp_path, dataset, data_dir, *extra, algorithm="fixmatch", num_labels=14):
    """The one error line of a refused run (exit code 2, no run folder left)."""
    save_dir = tmp_path / "refused"
    rc, out, err = run_cli(["train", "--algorithm", algorithm, "--dataset", dataset, "--data_dir", data_dir,
                            "--num_labels", num_labels, "--save_dir", save_dir, "--save_name", "run", *RUN,
                            *extra], capsys)
    assert rc == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("semilearn train: error:")]
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    assert not save_dir.exists()  # nothing was created (or it was removed)
    return lines[0]


def log_counts(log):
    line = next(line for line in log.splitlines() if "unlabeled data number" in line)
    return [int(s.strip(",")) for s in line.split() if s.strip(",").isdigit()]


# ---- registry -----------------------------------------------------------------------------
def test_registered_datasets_and_defaults():
    from leaf_plugin.data import DATASETS

    expect = {"rafdb": (7, 224, 100), "ferplus": (8, 48, 800), "affectnet7": (7, 224, 100),
              "affectnet8": (8, 224, 100), "fer2013": (7, 48, 175), "imagefolder": (0, 224, 0)}
    for name, (n, size, labels) in expect.items():
        spec = DATASETS[name]
        assert (spec.num_classes, spec.img_size, spec.default_num_labels) == (n, size, labels), name
        assert spec.needs_data_dir and spec.layouts
    assert DATASETS["rafdb"].class_names == RAF
    assert DATASETS["ferplus"].class_names == FERPLUS
    assert DATASETS["affectnet8"].class_names == AFFECTNET
    assert DATASETS["affectnet7"].class_names == AFFECTNET[:7]
    assert DATASETS["fer2013"].class_names == FER


def test_ferplus_label_rules():
    from leaf_plugin.data.ferplus import majority_labels, plurality_labels

    votes = np.array([v for v, _, _ in SPECIAL_VOTES])
    assert majority_labels(votes).tolist() == [-1 if m is None else m for _, m, _ in SPECIAL_VOTES]
    assert plurality_labels(votes).tolist() == [-1 if p is None else p for _, _, p in SPECIAL_VOTES]
    clean = np.array([clean_votes(label, k) for label in range(8) for k in range(4)])
    for rule in (majority_labels, plurality_labels):
        assert rule(clean).tolist() == [label for label in range(8) for _ in range(4)]
        assert rule([0, 0, 0, 0, 0, 0, 0, 10, 0, 0]).tolist() == [7]  # contempt is a class
        assert rule([0] * 10).tolist() == [-1]


def test_default_recipes(tmp_path, faces):
    """small at 48 px for fer2013/ferplus, released at 224 px for the others; flags override."""
    from torchvision import transforms as T

    make_rafdb(tmp_path / "raf", faces, n_train=2, n_test=1)
    _, dd = build(["--dataset", "rafdb", "--data_dir", tmp_path / "raf", "--num_labels", 7])
    item = dd["train_ulb"][0]
    assert tuple(item["x_ulb_w"].shape) == (3, 224, 224) and tuple(item["x_ulb_s"].shape) == (3, 224, 224)
    assert any(isinstance(t, T.RandomApply) for t in dd["train_lb"].transform.transforms)  # released
    _, dd = build(["--dataset", "rafdb", "--data_dir", tmp_path / "raf", "--num_labels", 7, "--img_size", 40,
                   "--aug_recipe", "small"])
    assert tuple(dd["eval"][0]["x_lb"].shape) == (3, 40, 40)
    assert not any(isinstance(t, T.RandomApply) for t in dd["train_lb"].transform.transforms)
    make_fer2013_csv(tmp_path / "fer", faces, n_train=2, n_test=1)
    _, dd = build(["--dataset", "fer2013", "--data_dir", tmp_path / "fer", "--num_labels", 7])
    assert tuple(dd["eval"][0]["x_lb"].shape) == (3, 48, 48)


# ---- each layout: label mapping and counts (builder), then the real command ---------------
def test_rafdb_labels_and_split(tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces)
    args, dd = build(["--dataset", "rafdb", "--data_dir", root, "--num_labels", 21, "--seed", 3])
    assert dd["eval"].targets.tolist() == [c for c in range(7) for _ in range(4)]  # labels 1..7 -> 0..6
    assert os.path.basename(dd["eval"].data[0]) == "test_0001_aligned.jpg"
    assert counts(dd["train_lb"].targets, 7) == [3] * 7
    assert len(dd["train_ulb"]) == 70  # --include_lb_to_ulb true (USB's default)
    img, target = dd["eval"].__sample__(0)
    assert img.mode == "RGB" and target == 0  # grey JPEG -> 3 channels
    # the labeled choice depends on --seed only, and the rest is unlabeled without it
    _, again = build(["--dataset", "rafdb", "--data_dir", root, "--num_labels", 21, "--seed", 3])
    assert again["train_lb"].data == dd["train_lb"].data
    _, other = build(["--dataset", "rafdb", "--data_dir", root, "--num_labels", 21, "--seed", 4])
    assert other["train_lb"].data != dd["train_lb"].data
    _, excl = build(["--dataset", "rafdb", "--data_dir", root, "--num_labels", 21, "--seed", 3,
                     "--include_lb_to_ulb", "false"])
    assert len(excl["train_ulb"]) == 49 and not set(excl["train_ulb"].data) & set(excl["train_lb"].data)


def test_rafdb_trains(capsys, tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces)
    log = train(capsys, tmp_path, "rafdb", root, "leaf_fixmatch", 14)
    assert log_counts(log)[-2:] == [70, 14]
    assert "rafdb: 70 training and 28 test images in 7 classes" in log


def test_ferplus_labels(tmp_path, faces):
    expected = make_ferplus(tmp_path / "fp", faces)
    args, dd = build(["--dataset", "ferplus", "--data_dir", tmp_path / "fp", "--num_labels", 16,
                      "--ferplus_label", "majority"])
    assert dd["eval"].targets.tolist() == expected["test"]  # PrivateTest, majority labels
    assert sorted(dd["train_ulb"].targets.tolist()) == sorted(expected["train"])  # Training + PublicTest
    assert counts(dd["train_ulb"].targets, 8) == [10, 10, 9, 9, 10, 9, 9, 9]
    assert counts(dd["train_lb"].targets, 8) == [2] * 8
    assert dd["eval"].data.shape[1:] == (48, 48)
    _, dd = build(["--dataset", "ferplus", "--data_dir", tmp_path / "fp", "--num_labels", 16])  # plurality
    assert dd["eval"].targets.tolist() == expected["test"]
    assert sorted(dd["train_ulb"].targets.tolist()) == sorted(expected["train_plurality"])
    assert counts(dd["train_ulb"].targets, 8) == [10, 11, 9, 9, 11, 9, 9, 9]


def test_ferplus_trains(capsys, tmp_path, faces):
    make_ferplus(tmp_path / "fp", faces)
    log = train(capsys, tmp_path, "ferplus", tmp_path / "fp", "fixmatch", 16, "--ferplus_label", "majority")
    assert log_counts(log)[-2:] == [75, 16]
    assert "ferplus: 8 of 115 images dropped by the majority rule" in log


# ---- FERPlus as a .npz with the ten votes per face ------------------------------------------
# per face: (plurality label stored in y, votes); the majority rule keeps the faces whose label is not None
NPZ_VOTES = {
    "train": [(c, clean_votes(c, k)) for c in range(8) for k in range(3 if c < 7 else 2)]  # contempt: 2
             + [(4, [0, 0, 0, 0, 4, 2, 2, 0, 0, 0]), (0, [4, 3, 3, 0, 0, 0, 0, 0, 0, 0])],
    "val": [(c, clean_votes(c, 1)) for c in range(8)] + [(6, [0, 3, 0, 0, 0, 0, 5, 0, 1, 1])],
}
NPZ_MAJORITY = {"train": [c for c in range(8) for _ in range(3 if c < 7 else 2)],  # 4 of 8, 4 of 10 fail
                "val": list(range(8)) + [6]}  # 5 of 8 once the single votes go


def make_ferplus_npz(path, faces, **drop):
    arrays = {}
    for part, split in (("train", "train"), ("val", "test")):
        rows = NPZ_VOTES[part]
        arrays[f"x_{part}"] = np.stack([faces[split][FERPLUS_TO_FER[y]][i % 12] for i, (y, _) in enumerate(rows)])
        arrays[f"y_{part}"] = np.array([y for y, _ in rows])
        arrays[f"votes_{part}"] = np.array([v for _, v in rows], dtype=np.int32)
    arrays["class_names"] = np.array(FERPLUS)
    for key in drop:
        arrays.pop(key)
    np.savez(path, **arrays)
    return path


def test_ferplus_npz_label_modes(tmp_path, faces):
    from leaf_plugin.data.ferplus import read_ferplus

    path = make_ferplus_npz(tmp_path / "fp.npz", faces)
    _, dd = build(["--dataset", "ferplus", "--data_dir", path, "--num_labels", 16])
    assert dd["eval"].targets.tolist() == [y for y, _ in NPZ_VOTES["val"]]  # plurality: the stored labels
    assert counts(dd["train_ulb"].targets, 8) == [4, 3, 3, 3, 4, 3, 3, 2]
    img = dd["eval"].__sample__(2)[0]
    assert np.array_equal(np.asarray(img)[..., 0], faces["test"][FERPLUS_TO_FER[2]][2])
    _, dd = build(["--dataset", "ferplus", "--data_dir", path, "--num_labels", 16, "--ferplus_label", "majority"])
    assert dd["eval"].targets.tolist() == NPZ_MAJORITY["val"]
    assert sorted(dd["train_ulb"].targets.tolist()) == NPZ_MAJORITY["train"]
    # the votes travel with the kept faces; the folder holding the file reads the same
    train, val = read_ferplus(str(tmp_path), "majority")
    assert train.dropped == 2 and val.dropped == 0 and len(train.votes) == 23
    assert val.votes[-1].tolist() == NPZ_VOTES["val"][-1][1]


def test_ferplus_npz_trains(capsys, tmp_path, faces):
    path = make_ferplus_npz(tmp_path / "fp.npz", faces)
    log = train(capsys, tmp_path, "ferplus", path, "leaf_fixmatch", 16)
    assert log_counts(log)[-2:] == [25, 16]
    assert "ferplus: 25 training and 9 test images in 8 classes" in log


def test_ferplus_report_holds_the_positive_sets_against_the_votes(capsys, tmp_path, faces):
    """semilearn report of a FERPlus run: the ambiguity table over the test faces' votes, and its plot."""
    path = make_ferplus_npz(tmp_path / "fp.npz", faces)
    train(capsys, tmp_path, "ferplus", path, "leaf_fixmatch", 16)
    rc, out, err = run_cli(["report", tmp_path / "runs" / "run", "--progress", "false"], capsys)
    assert rc == 0, err[-2000:]
    report = (tmp_path / "runs" / "run" / "report.md").read_text()
    assert "## Ambiguity: positive sets against the annotators' votes" in report
    assert "| all | 9 |" in report and (tmp_path / "runs" / "run" / "ambiguity.png").is_file()


def test_ferplus_npz_bad_inputs(capsys, tmp_path, faces):
    fer7 = tmp_path / "fer7.npz"
    np.savez(fer7, x_train=np.stack([f[0] for f in faces["train"]]), y_train=np.arange(7),
             x_val=np.stack([f[0] for f in faces["test"]]), y_val=np.arange(7), class_names=np.array(FER))
    line = fails(capsys, tmp_path, "ferplus", fer7, num_labels=8)
    assert "fer7.npz' is a 7-class FER2013 file" in line and "--dataset fer2013" in line
    bare = make_ferplus_npz(tmp_path / "bare.npz", faces, class_names=1, votes_train=1, votes_val=1)
    line = fails(capsys, tmp_path, "ferplus", bare, num_labels=8)
    assert "has neither class_names nor votes_train and votes_val" in line
    no_votes = make_ferplus_npz(tmp_path / "no_votes.npz", faces, votes_train=1, votes_val=1)
    line = fails(capsys, tmp_path, "ferplus", no_votes, "--ferplus_label", "majority", num_labels=8)
    assert "no_votes.npz' has no votes_train and votes_val, which --ferplus_label majority needs" in line
    _, dd = build(["--dataset", "ferplus", "--data_dir", no_votes, "--num_labels", 8])  # plurality needs none
    assert len(dd["eval"]) == 9
    # 2 contempt faces in training: 3 per class is too many
    line = fails(capsys, tmp_path, "ferplus", make_ferplus_npz(tmp_path / "fp.npz", faces), num_labels=24)
    assert "asks for 3 labeled images per class, but class 'contempt' has only 2" in line
    assert "--num_labels at most 16" in line
    line = fails(capsys, tmp_path, "ferplus", tmp_path / "fp.npz", "--ferplus_label", "strict", num_labels=8)
    assert "--ferplus_label" in line and "plurality" in line


@pytest.mark.parametrize("classes", [7, 8])
def test_affectnet_labels(tmp_path, faces, classes):
    expected = make_affectnet(tmp_path / "an", faces)
    args, dd = build(["--dataset", f"affectnet{classes}", "--data_dir", tmp_path / "an", "--num_labels", classes])
    keep = lambda labels: [y for y in labels if y < classes]  # noqa: E731  (7 classes: contempt dropped)
    assert dd["eval"].targets.tolist() == keep(expected["test"])  # validation.csv is the test set
    assert counts(dd["train_ulb"].targets, classes) == [10] * classes
    assert all("Manually_Annotated_Images" in p for p in dd["eval"].data)


def test_affectnet_images_directly_under_data_dir(tmp_path, faces):
    make_affectnet(tmp_path / "an", faces, images=None, val_header=True)
    _, dd = build(["--dataset", "affectnet8", "--data_dir", tmp_path / "an", "--num_labels", 8])
    assert len(dd["eval"]) == 32 and len(dd["train_ulb"]) == 80


@pytest.mark.parametrize("classes,algorithm", [(7, "leaf"), (8, "flexmatch")])
def test_affectnet_trains(capsys, tmp_path, faces, classes, algorithm):
    make_affectnet(tmp_path / "an", faces)
    log = train(capsys, tmp_path, f"affectnet{classes}", tmp_path / "an", algorithm, 2 * classes)
    assert log_counts(log)[-2:] == [10 * classes, 2 * classes]


def test_fer2013_layouts_agree(tmp_path, faces):
    """CSV, image folders and .npz (the file or its folder) give the same labels."""
    make_fer2013_csv(tmp_path / "csv", faces)
    make_tree(tmp_path / "tree", faces, FER, range(7))
    x_tr = np.stack([f for c in range(7) for f in faces["train"][c][:10]])
    x_te = np.stack([f for c in range(7) for f in faces["test"][c][:4]])
    y_tr, y_te = np.repeat(np.arange(7), 10), np.repeat(np.arange(7), 4)
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "mine.npz", x_train=x_tr, y_train=y_tr, x_val=x_te, y_val=y_te, class_names=np.array(FER))
    for data_dir in (tmp_path / "csv", tmp_path / "tree", tmp_path / "npz", tmp_path / "npz" / "mine.npz"):
        _, dd = build(["--dataset", "fer2013", "--data_dir", data_dir, "--num_labels", 14])
        assert counts(dd["train_ulb"].targets, 7) == [10] * 7, data_dir
        assert counts(dd["train_lb"].targets, 7) == [2] * 7, data_dir
        if data_dir.name == "tree":  # folders in name order, each folder's label its FER2013 index
            assert all(os.path.basename(os.path.dirname(p)) == FER[y]
                       for p, y in zip(dd["eval"].data, dd["eval"].targets))
            assert counts(dd["eval"].targets, 7) == [4] * 7
            continue
        assert dd["eval"].targets.tolist() == y_te.tolist(), data_dir
        img = dd["eval"].__sample__(5)[0]
        assert np.array_equal(np.asarray(img)[..., 0], x_te[5]), data_dir  # grey -> 3 equal channels


@pytest.mark.parametrize("layout,algorithm", [("csv", "freematch"), ("tree", "leaf_flexmatch"),
                                              ("npz", "leaf_freematch")])
def test_fer2013_trains(capsys, tmp_path, faces, layout, algorithm):
    if layout == "csv":
        data_dir = make_fer2013_csv(tmp_path / "csv", faces)
    elif layout == "tree":
        data_dir = make_tree(tmp_path / "tree", faces, FER, range(7), ext=".jpg")
    else:
        data_dir = tmp_path / "f.npz"
        np.savez(data_dir, x_train=np.concatenate([f[:10] for f in faces["train"]]),
                 y_train=np.repeat(np.arange(7), 10), x_val=np.concatenate([f[:4] for f in faces["test"]]),
                 y_val=np.repeat(np.arange(7), 4))
    log = train(capsys, tmp_path, "fer2013", data_dir, algorithm, 14)
    assert log_counts(log)[-2:] == [70, 14]


def test_imagefolder_classes_from_tree(tmp_path, faces):
    from leaf_plugin.data import get_dataset_spec
    from leaf_plugin.data.imagefolder import num_classes_from
    from argparse import Namespace

    root = make_tree(tmp_path / "if", faces, ("b_happy", "a_sad", "c_neutral"), (3, 4, 6), mode="RGB")
    (root / "train" / ".hidden").mkdir()
    (root / "train" / "a_sad" / "notes.txt").write_text("not an image")
    assert num_classes_from(Namespace(dataset="imagefolder", data_dir=str(root), num_classes=None)) == 3
    assert num_classes_from(Namespace(dataset="rafdb", data_dir="nowhere", num_classes=None)) == 7
    from leaf_plugin.arguments import parse_train_args
    args = parse_train_args(["--dataset", "rafdb", "--data_dir", str(root), "--num_labels", "7"])
    args.dataset, args.num_classes, args.num_labels = "imagefolder", None, 6
    dd = get_dataset_spec("imagefolder").build(args, "fixmatch")
    assert args.num_classes == 3 and args.class_names == "a_sad,b_happy,c_neutral"
    assert counts(dd["train_ulb"].targets, 3) == [10, 10, 10]
    assert dd["eval"].targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert "a_sad" in dd["eval"].data[0] and dd["eval"].__sample__(0)[0].mode == "RGB"
    with pytest.raises(Exception, match="does not match the 3 class folders"):
        args.num_classes = 5
        get_dataset_spec("imagefolder").build(args, "fixmatch")


def test_imagefolder_trains(capsys, tmp_path, faces):
    root = make_tree(tmp_path / "if", faces, ("b_happy", "a_sad", "c_neutral"), (3, 4, 6), mode="RGB")
    from leaf_plugin.arguments import parse_train_args

    args = parse_train_args(["--dataset", "imagefolder", "--data_dir", str(root), "--num_labels", "6"])
    assert args.num_classes == 3
    assert parse_train_args(["--dataset", "imagefolder", "--data_dir", str(root)]).num_labels == 12  # 4 per class
    log = train(capsys, tmp_path, "imagefolder", root, "fixmatch", 6)
    assert log_counts(log)[-2:] == [30, 6]


# ---- errors -------------------------------------------------------------------------------
def test_missing_data_dir(capsys, tmp_path):
    for dataset in ("rafdb", "ferplus", "affectnet7", "affectnet8", "fer2013", "imagefolder"):
        line = fails(capsys, tmp_path, dataset, tmp_path / "absent", num_labels=16)
        assert str(tmp_path / "absent") in line and "expected" in line, line
        assert "does not exist" in line


def test_missing_label_files(capsys, tmp_path, faces):
    (tmp_path / "empty").mkdir()
    line = fails(capsys, tmp_path, "rafdb", tmp_path / "empty")
    assert "list_patition_label.txt" in line and "Image/aligned" in line
    line = fails(capsys, tmp_path, "ferplus", tmp_path / "empty", num_labels=16)
    assert str(tmp_path / "empty" / "fer2013.csv") in line and "fer2013new.csv" in line
    line = fails(capsys, tmp_path, "affectnet8", tmp_path / "empty", num_labels=16)
    assert str(tmp_path / "empty" / "training.csv") in line and "Manually_Annotated_Images" in line
    line = fails(capsys, tmp_path, "fer2013", tmp_path / "empty")
    assert "fer2013.csv" in line and ".npz" in line and "train/<class>/" in line
    line = fails(capsys, tmp_path, "imagefolder", tmp_path / "empty", num_labels=16)
    assert str(tmp_path / "empty" / "train") in line
    make_fer2013_csv(tmp_path / "fp", faces, n_train=1, n_test=1, n_private=1)
    line = fails(capsys, tmp_path, "ferplus", tmp_path / "fp", num_labels=16)
    assert str(tmp_path / "fp" / "fer2013new.csv") in line


def test_label_out_of_range(capsys, tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces, n_train=2, n_test=1)
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    lines = label_file.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 8"
    label_file.write_text("\n".join(lines) + "\n")
    line = fails(capsys, tmp_path, "rafdb", root)
    assert f"'{label_file}' line 5" in line and "label 8 is out of range" in line and "1..7" in line

    make_affectnet(tmp_path / "an", faces, n_train=2, n_test=1)
    with open(tmp_path / "an" / "validation.csv", "a", newline="") as f:
        csv.writer(f).writerow(["100/x.png", 0, 0, 1, 1, "", 11, 0, 0])
    line = fails(capsys, tmp_path, "affectnet7", tmp_path / "an")
    assert f"'{tmp_path / 'an' / 'validation.csv'}' line 15" in line and "expression 11" in line

    make_fer2013_csv(tmp_path / "fer", faces, n_train=2, n_test=1, n_private=0)
    text = (tmp_path / "fer" / "fer2013.csv").read_text().splitlines()
    text[3] = "9" + text[3][1:]
    (tmp_path / "fer" / "fer2013.csv").write_text("\n".join(text) + "\n")
    line = fails(capsys, tmp_path, "fer2013", tmp_path / "fer")
    assert "fer2013.csv' line 4" in line and "emotion 9" in line

    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 48, 48), np.uint8), y_train=np.array([0, 7, 1]),
             x_val=np.zeros((1, 48, 48), np.uint8), y_val=np.array([0]))
    line = fails(capsys, tmp_path, "fer2013", tmp_path / "bad.npz")
    assert "bad.npz" in line and "y_train[1] is 7" in line


def test_malformed_files(capsys, tmp_path, faces):
    make_ferplus(tmp_path / "fp", faces, per_class=(1, 1, 1))
    votes = tmp_path / "fp" / "fer2013new.csv"
    votes.write_text(votes.read_text().replace("contempt", "scorn", 1))
    line = fails(capsys, tmp_path, "ferplus", tmp_path / "fp", num_labels=8)
    assert str(votes) in line and "no column 'contempt'" in line
    make_fer2013_csv(tmp_path / "fer", faces, n_train=2, n_test=1, n_private=0)
    text = (tmp_path / "fer" / "fer2013.csv").read_text().splitlines()
    text[2] = text[2].replace(" ", " x ", 1)
    (tmp_path / "fer" / "fer2013.csv").write_text("\n".join(text) + "\n")
    line = fails(capsys, tmp_path, "fer2013", tmp_path / "fer")
    assert "fer2013.csv' line 3" in line and "pixels" in line
    root = make_rafdb(tmp_path / "raf", faces, n_train=2, n_test=1)
    with open(root / "EmoLabel" / "list_patition_label.txt", "a") as f:
        f.write("val_0001.jpg 3\n")
    line = fails(capsys, tmp_path, "rafdb", root)
    assert "line 22" in line and "val_0001.jpg" in line


def test_missing_and_unreadable_images(capsys, tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces, n_train=3, n_test=1)
    gone = root / "Image" / "aligned" / "train_00002_aligned.jpg"
    gone.unlink()
    line = fails(capsys, tmp_path, "rafdb", root)
    assert str(gone) in line and "does not exist" in line and "line 2" in line and "--skip_bad_images" in line
    junk = root / "Image" / "aligned" / "train_00005_aligned.jpg"
    junk.write_bytes(b"not a jpeg at all")
    line = fails(capsys, tmp_path, "rafdb", root)
    assert str(gone) in line and "1 more bad" in line
    save(faces["train"][0][0], gone)
    line = fails(capsys, tmp_path, "rafdb", root)
    assert str(junk) in line and "cannot be read" in line
    # skipped and counted with --skip_bad_images true (builder level: no training needed)
    gone.unlink()
    args, dd = build(["--dataset", "rafdb", "--data_dir", root, "--num_labels", 7, "--skip_bad_images", "true"])
    assert len(dd["train_ulb"]) == 19
    assert "skipped 2 of 21 rafdb training images (1 missing, 1 unreadable" in capsys.readouterr().err


def test_too_few_images_in_a_class(capsys, tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces, n_train=3, n_test=1)
    line = fails(capsys, tmp_path, "rafdb", root, num_labels=28)
    assert "class 'surprise' has only 3 training images" in line


def truncate_one(root, name):
    path = root / "Image" / "aligned" / name
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 60])  # cut after the header: found only when decoded
    return path


@pytest.mark.parametrize("workers", [0, 1])
def test_decode_failure_at_training_time(capsys, tmp_path, faces, workers):
    root = make_rafdb(tmp_path / "raf", faces, n_train=2, n_test=2)
    bad = truncate_one(root, "test_0003_aligned.jpg")
    save_dir = tmp_path / "runs"
    rc, out, err = run_cli(["train", "--algorithm", "fixmatch", "--dataset", "rafdb", "--data_dir", root,
                            "--num_labels", 7, "--save_dir", save_dir, *RUN, "--num_workers", workers], capsys)
    assert rc == 2, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("semilearn train: error:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "cannot be decoded" in lines[0], err[-2000:]
    assert "Traceback" not in err


def test_skip_bad_images_trains(capsys, tmp_path, faces):
    root = make_rafdb(tmp_path / "raf", faces, n_train=3, n_test=2)
    (root / "Image" / "aligned" / "train_00004_aligned.jpg").write_bytes(b"junk")
    bad = truncate_one(root, "test_0002_aligned.jpg")
    log = train(capsys, tmp_path, "rafdb", root, "leaf_fixmatch", 7, "--skip_bad_images", "true")
    assert "skipped 1 of 21 rafdb training images" in log
    assert f"image '{bad}' cannot be decoded; using the next readable image instead" in log
