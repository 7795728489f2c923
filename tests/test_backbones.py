"""Backbones: resnet18 and timm/NAME under semilearn's contract, and --pretrain_path."""
from __future__ import annotations

import pytest
import torch
import torchvision

from conftest import TINY, run_cli

# one training step whose update is negligible: the loaded weights are still there afterwards
NO_UPDATE = ["--num_train_iter", "1", "--num_eval_iter", "1", "--lr", "1e-12"]


def check_contract(net, num_classes, dim, size=32):
    x = torch.randn(3, 3, size, size)
    net.eval()
    out = net(x)
    assert set(out) >= {"logits", "feat"}
    assert out["logits"].shape == (3, num_classes) and out["feat"].shape == (3, dim)
    feat = net(x, only_feat=True)
    assert torch.allclose(feat, out["feat"])
    assert torch.allclose(net(feat, only_fc=True), out["logits"])
    assert net.num_features == dim
    assert isinstance(net.group_matcher(), dict) and net.no_weight_decay() is not None


def test_resnet18_is_a_registered_semilearn_net():
    import semilearn.nets
    from semilearn.core.utils import get_net_builder

    import leaf_plugin  # noqa: F401
    from leaf_plugin.nets import NETS, ResNet18

    assert "resnet18" in NETS and getattr(semilearn.nets, "resnet18") is NETS["resnet18"]
    net = get_net_builder("resnet18", False)(num_classes=7)
    assert isinstance(net, ResNet18) and net.fc.out_features == 7
    check_contract(net, 7, 512)
    # torchvision's names: its checkpoints load as they are
    assert set(net.state_dict()) == set(torchvision.models.resnet18().state_dict())


def test_timm_net_contract_and_local_weights(tmp_path):
    import timm

    from leaf_plugin.arguments import parse_train_args
    from leaf_plugin.nets.builders import net_builder_for
    from leaf_plugin.nets.timm_backbone import TimmNet

    args = parse_train_args(["--net", "timm/resnet18", "--img_size", "32"])
    net = net_builder_for(args)(num_classes=5)
    assert isinstance(net, TimmNet)
    check_contract(net, 5, 512)
    source = timm.create_model("resnet18", pretrained=False)  # never downloads
    torch.save(source.state_dict(), tmp_path / "timm_resnet18.pth")
    loaded = net_builder_for(args)(num_classes=5, pretrained_path=str(tmp_path / "timm_resnet18.pth"))
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(loaded.model.state_dict()[key], value), key
    assert loaded.classifier.out_features == 5


@pytest.fixture(scope="module")
def torchvision_checkpoints(tmp_path_factory):
    """A random torchvision ResNet-18 (1000-class head) saved plain and in the
    ``{'state_dict': {'module.' + k: v}}`` format of the MS-Celeb-1M face model;
    and a ResNet-34 (does not match resnet18)."""
    folder = tmp_path_factory.mktemp("tv")
    torch.manual_seed(123)
    source = torchvision.models.resnet18(num_classes=1000)
    state = source.state_dict()
    torch.save(state, folder / "plain.pth")
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "epoch": 30}, folder / "msceleb.pth")
    torch.save(torchvision.models.resnet34().state_dict(), folder / "resnet34.pth")
    return folder, state


@pytest.mark.parametrize("fmt", ["plain", "msceleb"])
def test_torchvision_resnet18_weights_load_and_head_is_reinitialised(torchvision_checkpoints, fmt):
    from leaf_plugin.arguments import parse_train_args
    from leaf_plugin.nets.builders import net_builder_for

    folder, state = torchvision_checkpoints
    path = str(folder / f"{fmt}.pth")
    args = parse_train_args(["--net", "resnet18", "--pretrain_path", path])
    net = net_builder_for(args)(num_classes=10, pretrained_path=path)
    own = net.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    assert net.fc.weight.shape == (10, 512) and net.fc.bias.shape == (10,)
    # the EMA copy / predict build without pretrained_path: nothing is loaded
    fresh = net_builder_for(args)(num_classes=10)
    assert not torch.equal(fresh.conv1.weight, state["conv1.weight"])


@pytest.mark.slow
def test_pretrain_path_round_trips_through_semilearn_train(tmp_path, capsys, torchvision_checkpoints):
    folder, state = torchvision_checkpoints
    rc, out, err = run_cli(["train", *TINY, *NO_UPDATE, "--net", "resnet18", "--pretrain_path",
                            folder / "msceleb.pth", "--save_dir", tmp_path, "--save_name", "r18"], capsys)
    assert rc == 0, err
    ckpt = torch.load(tmp_path / "r18" / "latest_model.pth", map_location="cpu", weights_only=False)
    model = ckpt["model"]  # LEAF: the backbone under 'backbone.'
    for key, value in state.items():
        if key.startswith("fc.") or not key.endswith(("weight", "bias")):
            continue  # BN running statistics move with every forward pass
        assert torch.allclose(model["backbone." + key], value, atol=1e-6), key
    assert model["backbone.fc.weight"].shape == (10, 512)


@pytest.mark.slow
def test_mismatched_pretrain_path_fails_unless_not_strict(tmp_path, capsys, torchvision_checkpoints):
    folder, state = torchvision_checkpoints
    argv = ["train", *TINY, *NO_UPDATE, "--net", "resnet18", "--pretrain_path", folder / "resnet34.pth",
            "--save_dir", tmp_path, "--save_name", "r34"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 2
    assert "does not match the backbone: 0 missing and 96 unexpected or mis-shaped keys" in err
    assert "--pretrain_strict false" in err and "Traceback" not in err
    assert not (tmp_path / "r34").exists()
    rc, out, err = run_cli(argv + ["--pretrain_strict", "false"], capsys)
    assert rc == 0, err
    assert "96 unexpected or mis-shaped keys left out" in err
    model = torch.load(tmp_path / "r34" / "latest_model.pth", map_location="cpu", weights_only=False)["model"]
    r34 = torch.load(folder / "resnet34.pth")
    assert torch.allclose(model["backbone.conv1.weight"], r34["conv1.weight"], atol=1e-6)


def test_missing_pretrain_file_is_exit_2(tmp_path, capsys):
    rc, out, err = run_cli(["train", *TINY, *NO_UPDATE, "--pretrain_path", tmp_path / "nope.pth",
                            "--save_dir", tmp_path, "--save_name", "x"], capsys)
    assert rc == 2 and "does not exist" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_timm_backbone_trains_on_the_cpu(tmp_path, capsys):
    tiny = list(TINY)
    tiny[tiny.index("--img_size") + 1] = "32"
    rc, out, err = run_cli(["train", *tiny, "--net", "timm/resnet18", "--num_train_iter", "2",
                            "--num_eval_iter", "2", "--save_dir", tmp_path, "--save_name", "timm"], capsys)
    assert rc == 0, err
    ckpt = torch.load(tmp_path / "timm" / "latest_model.pth", map_location="cpu", weights_only=False)
    assert ckpt["it"] == 2 and "backbone.model.conv1.weight" in ckpt["model"]
    assert ckpt["model"]["backbone.classifier.weight"].shape == (10, 512)


def test_unknown_timm_model_is_exit_2(tmp_path, capsys):
    rc, out, err = run_cli(["train", *TINY, "--net", "timm/no_such_model_xyz", "--save_dir", tmp_path], capsys)
    assert rc == 2 and "unknown timm model 'no_such_model_xyz'" in err
