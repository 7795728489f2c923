"""Tests of leaf_plugin.layers: ExpertGating, LeafConfig, LeafNet."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.leaf_reference import build_leaf_net, loop_reference, reference_balance, reference_gates
from leaf_plugin.layers import ExpertGating, LeafConfig, LeafLoss, LeafNet
from leaf_plugin.layers.gating import cv_squared


# ----------------------------------------------------------------------- ExpertGating
@pytest.mark.parametrize("num_experts, top_k", [(1, 1), (4, 2), (8, 3), (5, 5)])
@pytest.mark.parametrize("training", [False, True])
def test_vectorised_equals_loop(num_experts, top_k, training):
    torch.manual_seed(0)
    m = ExpertGating(12, num_experts=num_experts, top_k=top_k).train(training)
    v = torch.randn(9, 12)
    noise = torch.randn(9, num_experts)
    out, gates, bal = m(v, noise=noise)
    with torch.no_grad():  # the reference is written out independently of the module's _gate/_balance
        ref_out, ref_gates, ref_bal = loop_reference(m, v, noise=noise)
    assert out.shape == (9, 12) and gates.shape == (9, num_experts) and bal.shape == ()
    assert torch.allclose(out, ref_out, atol=1e-6)
    assert torch.equal(gates > 0, ref_gates > 0)  # same experts routed
    assert torch.allclose(gates, ref_gates, atol=1e-6)
    assert torch.allclose(bal, ref_bal, atol=1e-6)
    if training and top_k < num_experts:  # the smooth load, not the counts, enters the balance term
        _, load = reference_gates(m, v, noise=noise)
        counts = (ref_gates > 0).sum(0).float()
        assert not torch.allclose(load, counts)
        assert torch.allclose(bal, reference_balance(m, ref_gates, load), atol=1e-6)


def test_reference_is_independent_of_the_module_helpers(monkeypatch):
    """A broken ``_gate`` / ``_balance`` is caught by the comparison with the reference."""
    torch.manual_seed(0)
    m = ExpertGating(12, num_experts=4, top_k=2).train()
    v, noise = torch.randn(9, 12), torch.randn(9, 4)
    good = m._balance
    monkeypatch.setattr(m, "_balance", lambda gates, load: 2 * good(gates, load))
    with torch.no_grad():
        ref = loop_reference(m, v, noise=noise)
    assert not torch.allclose(m(v, noise=noise)[2], ref[2])
    monkeypatch.undo()
    good_gate = m._gate
    monkeypatch.setattr(m, "_gate", lambda v, noise: (good_gate(v, noise)[0].roll(1, 1),) + good_gate(v, noise)[1:])
    assert not torch.allclose(m(v, noise=noise)[1], ref[1])


def test_zero_init_starts_as_identity_then_learns():
    torch.manual_seed(0)
    m = ExpertGating(6, num_experts=4, top_k=2, zero_init=True).train()
    assert torch.count_nonzero(m.fc2_weight) == 0 and torch.count_nonzero(m.fc2_bias) == 0
    assert torch.count_nonzero(m.fc1_weight) == m.fc1_weight.numel()  # first layers stay random
    v = torch.randn(5, 6, requires_grad=True)
    out, gates, _ = m(v)
    assert torch.equal(out, v)
    target = torch.randn(5, 6)
    ((out - target) ** 2).sum().backward()
    # the second layers learn from the first step; the gate sees zero experts, so no gradient yet
    assert m.fc2_weight.grad.abs().sum() > 0 and m.fc2_bias.grad.abs().sum() > 0
    assert torch.count_nonzero(m.w_gate.grad) == 0 and torch.count_nonzero(m.fc1_weight.grad) == 0
    with torch.no_grad():
        for p in m.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    m.zero_grad()
    out, _, _ = m(v.detach())
    ((out - target) ** 2).sum().backward()
    assert m.w_gate.grad.abs().sum() > 0 and m.fc1_weight.grad.abs().sum() > 0


def test_leaf_net_expert_init_zero_is_the_backbone_feature_scaled():
    torch.manual_seed(0)
    net = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=4, expert_init="zero")).train()
    x = torch.randn(3, 20)
    out = net(x)
    z = F.normalize(net.backbone(x, only_feat=True), dim=1)
    assert torch.allclose(out["feat"], 16.0 * z, atol=1e-6) and torch.allclose(out["leaf_z"], z, atol=1e-6)
    assert torch.count_nonzero(LeafNet(TinyBackbone(), 5, LeafConfig()).semantic.fc2_weight) > 0  # default


def test_rezero_level_starts_as_identity_and_scales_the_experts_by_its_gain():
    torch.manual_seed(3)
    m = ExpertGating(10, num_experts=4, rezero=True).train()
    v, noise = torch.randn(6, 10), torch.randn(6, 4)
    out, _, _ = m(v, noise=noise)
    assert torch.equal(out, v)  # gain 0: the identity
    out.pow(2).sum().backward()
    # d out / d gain = experts' sum, so the gain learns at once; the experts behind a zero gain don't yet
    assert m.gain.grad.abs() > 0 and m.fc2_weight.grad.abs().sum() == 0
    with torch.no_grad():
        m.gain.fill_(0.5)
        out, _, _ = m(v, noise=noise)
        ref, _, _ = loop_reference(m, v, noise=noise)  # gain-free: v + sum_k G_k E_k(v)
    torch.testing.assert_close(out, v + 0.5 * (ref - v), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="rezero"):
        ExpertGating(10, zero_init=True, rezero=True)


def test_leaf_net_learned_scale_starts_at_feature_scale_and_gets_gradient():
    torch.manual_seed(0)
    cfg = LeafConfig(num_experts=4, semantic=False, instance=False, feature_scale=8.0, learn_scale=True)
    net = LeafNet(TinyBackbone(), 5, cfg).train()
    x = torch.randn(3, 20)
    out = net(x)
    torch.testing.assert_close(out["feat"].norm(dim=1), torch.full((3,), 8.0))
    F.cross_entropy(out["logits"], torch.tensor([0, 1, 2])).backward()
    assert net.log_scale.grad is not None and net.log_scale.grad.abs() > 0
    assert "log_scale" in net.no_weight_decay()
    rezero = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=4, expert_init="rezero"))
    assert {"semantic.gain", "instance.gain"} <= set(rezero.no_weight_decay())
    assert LeafNet(TinyBackbone(), 5, LeafConfig()).log_scale is None  # default: fixed scale, no parameter


def test_leaf_net_unnormalised_head_is_the_hosts_head_without_levels():
    torch.manual_seed(0)
    backbone = TinyBackbone().eval()
    net = LeafNet(backbone, 5, LeafConfig(semantic=False, instance=False, normalize=False)).eval()
    x = torch.randn(4, 20)
    out = net(x)
    torch.testing.assert_close(out["logits"], backbone(x)["logits"])  # the host's own feature and head
    torch.testing.assert_close(out["leaf_z"], F.normalize(backbone(x, only_feat=True), dim=1))
    gated = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=4, semantic=False, normalize=False)).eval()
    ref, _, _ = gated.instance(gated.backbone(x, only_feat=True))  # the instance level gates f, not z
    out = gated(x)
    torch.testing.assert_close(out["feat"], ref)  # unscaled
    torch.testing.assert_close(out["logits"], gated.backbone.classifier(ref))
    assert LeafConfig(learn_scale=True, normalize=False).learn_scale is False  # no scale to learn
    with pytest.raises(TypeError, match="normalize must be true or false"):
        LeafConfig(normalize="no")


def test_vectorised_equals_loop_faithful():
    torch.manual_seed(1)
    m = ExpertGating(10, num_experts=4, faithful=True).train()
    v = torch.randn(7, 10)
    noise = torch.randn(7, 4)
    out, _, _ = m(v, noise=noise)
    with torch.no_grad():
        ref_out, ref_gates, ref_bal = loop_reference(m, v, noise=noise)
    assert torch.allclose(out, ref_out, atol=1e-6)
    assert torch.equal(ref_gates.sum(1), torch.ones(7)) and ref_bal.item() == 0.0


def test_gates_are_softmax_over_top_k_of_clean_logits_in_eval():
    torch.manual_seed(2)
    m = ExpertGating(6, num_experts=5, top_k=2).eval()
    v = torch.randn(4, 6)
    _, gates, _ = m(v)
    logits = v @ m.w_gate
    for i in range(4):
        top = logits[i].argsort(descending=True)[:2]
        expected = torch.zeros(5)
        expected[top] = torch.softmax(logits[i, top], dim=0)
        assert torch.allclose(gates[i], expected, atol=1e-6)
    assert ((gates > 0).sum(1) == 2).all()


def test_experts_are_distinct_and_output_is_residual_sum():
    torch.manual_seed(3)
    m = ExpertGating(8, num_experts=3, top_k=3, noisy=False).eval()
    assert not torch.equal(m.fc1_weight[0], m.fc1_weight[1])
    v = torch.randn(2, 8)
    out, gates, _ = m(v)
    expected = v.clone()
    for k in range(3):
        e = F.relu(F.linear(v, m.fc1_weight[k], m.fc1_bias[k])) @ m.fc2_weight[k] + m.fc2_bias[k]
        expected += gates[:, k:k + 1] * e
    assert torch.allclose(out, expected, atol=1e-6)


def test_default_gate_gets_gradient_faithful_gets_exact_zero():
    torch.manual_seed(4)
    v = torch.randn(16, 8)
    m = ExpertGating(8, num_experts=4, top_k=2).train()
    out, _, bal = m(v)
    (out.pow(2).sum() + bal).backward()
    assert m.w_gate.grad is not None and m.w_gate.grad.abs().sum() > 0
    assert m.w_noise.grad is not None and m.w_noise.grad.abs().sum() > 0

    f = ExpertGating(8, num_experts=4, top_k=2, faithful=True).train()
    assert f.top_k == 1
    out, gates, bal = f(v)
    (out.pow(2).sum() + bal).backward()
    assert torch.equal(gates.sum(1), torch.ones(16))
    assert f.w_gate.grad is not None and torch.equal(f.w_gate.grad, torch.zeros_like(f.w_gate))
    assert torch.equal(f.w_noise.grad, torch.zeros_like(f.w_noise))
    assert f.fc1_weight.grad.abs().sum() > 0
    assert bal.item() == 0.0


def test_faithful_is_one_shared_residual_mlp():
    torch.manual_seed(5)
    f = ExpertGating(6, num_experts=8, faithful=True).train()
    assert f.fc1_weight.shape[0] == 1  # one expert module shared by the 8 slots
    v = torch.randn(5, 6)
    out, _, _ = f(v)
    mlp = F.relu(F.linear(v, f.fc1_weight[0], f.fc1_bias[0])) @ f.fc2_weight[0] + f.fc2_bias[0]
    assert torch.allclose(out, v + mlp, atol=1e-6)


def test_balance_eval_uses_counts():
    torch.manual_seed(6)
    m = ExpertGating(6, num_experts=4, top_k=2, balance_coef=0.5).eval()
    v = torch.randn(10, 6)
    _, gates, bal = m(v)
    importance = gates.sum(0)
    load = (gates > 0).sum(0).float()
    expected = 0.5 * (importance.var() / importance.mean() ** 2 + load.var() / load.mean() ** 2)
    assert bal.item() == pytest.approx(expected.item(), rel=1e-5)


def test_smooth_load_by_hand():
    # B = 1, K = 3, top-1; clean logits (1, 0, -1), w_noise = 0 -> std = softplus(0) + .01.
    m = ExpertGating(3, num_experts=3, top_k=1).train()
    with torch.no_grad():
        m.w_gate.copy_(torch.diag(torch.tensor([1.0, 0.0, -1.0])))
        m.w_noise.zero_()
    v = torch.tensor([[1.0, 1.0, 1.0]])
    noise = torch.zeros(1, 3)
    clean = v @ m.w_gate
    std = F.softplus(torch.zeros(1, 3)) + 0.01
    top_vals = clean.topk(2, dim=1).values
    prob = m._prob_in_top_k(clean, clean + noise * std, std, top_vals)
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    s = std[0, 0].item()
    expected = [phi((1 - 0) / s), phi((0 - 1) / s), phi((-1 - 1) / s)]
    assert torch.allclose(prob[0], torch.tensor(expected), atol=1e-6)


def test_cv_squared():
    assert cv_squared(torch.tensor([2.0, 2.0, 2.0])).item() == 0.0
    assert cv_squared(torch.tensor([1.0, 3.0])).item() == pytest.approx(2.0 / 4.0)
    assert cv_squared(torch.tensor([5.0])).item() == 0.0


def test_half_precision_autocast_forward():
    m = ExpertGating(16, num_experts=4).train()
    v = torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, gates, bal = m(v)
    assert torch.isfinite(out.float()).all() and torch.isfinite(bal)
    assert torch.allclose(gates.sum(1), torch.ones(8))


_DDP_WORKER = """
import importlib.util, sys
import torch, torch.distributed as dist
gating_path, init_file, rank, io_dir = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("_gating", gating_path)
gating = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gating)  # torch only: no leaf_plugin / semilearn import in the workers
dist.init_process_group("gloo", init_method="file://" + init_file, rank=int(rank), world_size=2)
data = torch.load(io_dir + "/in.pt")
m = gating.ExpertGating(6, num_experts=4, top_k=2).train()
m.load_state_dict(data["state"])
half = data["v"].shape[0] // 2
sl = slice(int(rank) * half, (int(rank) + 1) * half)
_, _, bal = m(data["v"][sl], noise=data["noise"][sl])
bal.backward()
torch.save({"bal": bal.detach(), "grad": m.w_gate.grad}, io_dir + f"/out{rank}.pt")
# Without this barrier a rank that finishes first can tear its connections down while the
# other still completes the backward all_reduce, and gloo aborts it (seen in CI, ~1 run in 20).
dist.barrier()
dist.destroy_process_group()
"""


def test_balance_sync_across_ranks_equals_single_process(tmp_path):
    """Two gloo ranks on half batches: same balance, and DDP-averaged grad = single-process grad."""
    import subprocess
    import sys

    from leaf_plugin.layers import gating

    torch.manual_seed(7)
    m = ExpertGating(6, num_experts=4, top_k=2).train()
    v, noise = torch.randn(12, 6), torch.randn(12, 4)
    _, _, bal_single = m(v, noise=noise)
    bal_single.backward()
    torch.save({"v": v, "noise": noise, "state": m.state_dict()}, tmp_path / "in.pt")
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    procs = [
        subprocess.Popen([sys.executable, str(script), gating.__file__, str(tmp_path / "init"),
                          str(rank), str(tmp_path)], stderr=subprocess.PIPE)
        for rank in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    outs = [torch.load(tmp_path / f"out{rank}.pt") for rank in range(2)]
    for out in outs:
        assert out["bal"].item() == pytest.approx(bal_single.item(), rel=1e-5)
    ddp_grad = (outs[0]["grad"] + outs[1]["grad"]) / 2  # DDP averages gradients over ranks
    assert m.w_gate.grad.abs().sum() > 0
    assert torch.allclose(ddp_grad, m.w_gate.grad, atol=1e-7, rtol=1e-5)


def test_balance_sync_only_when_training_distributed(monkeypatch):
    import torch.distributed as dist

    from leaf_plugin.layers import gating

    calls = []
    monkeypatch.setattr(gating, "_sync_sum", lambda x: calls.append(x) or x)
    v = torch.randn(5, 4)
    m = ExpertGating(4, num_experts=3).train()
    m(v)
    assert calls == []  # not initialised: no distributed call at all
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    m(v)
    assert len(calls) == 2  # importance and load
    m.eval()(v)
    ExpertGating(4, num_experts=3, sync_balance=False).train()(v)
    assert len(calls) == 2


# ------------------------------------------------------------------------ LeafConfig
@pytest.mark.parametrize(
    "kwargs, fragment, error",
    [
        ({"top_k": 0}, "top_k", ValueError),
        ({"num_experts": 4, "top_k": 5}, "top_k", ValueError),
        ({"num_experts": 0, "top_k": 1}, "num_experts", ValueError),
        ({"instance_on": "head"}, "instance_on", ValueError),
        ({"feature_scale": 0.0}, "feature_scale", ValueError),
        ({"feature_scale": float("nan")}, "feature_scale", ValueError),
        ({"balance_coef": -1.0}, "balance_coef", ValueError),
        ({"top_k": 2.0}, "top_k", TypeError),
        ({"semantic": "yes"}, "semantic", TypeError),
        ({"expert_init": "normal"}, "expert_init", ValueError),
        ({"feature_scale": "16"}, "feature_scale", TypeError),
    ],
)
def test_config_errors(kwargs, fragment, error):
    with pytest.raises(error, match=fragment) as info:
        LeafConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_faithful_forces_released_settings():
    c = LeafConfig(faithful=True, expert_init="zero", learn_scale=True)
    assert c.top_k == 1 and c.feature_scale == 1.0 and c.expert_init == "uniform" and not c.learn_scale
    assert LeafConfig(faithful=True, normalize=False).normalize  # the released code normalises
    assert LeafConfig().top_k == 2 and LeafConfig().feature_scale == 16.0


# --------------------------------------------------------------------------- LeafNet
class TinyBackbone(nn.Module):
    """semilearn-like net: only_feat / only_fc / dict output."""

    def __init__(self, num_classes=5, dim=12):
        super().__init__()
        self.conv = nn.Linear(20, dim)
        self.bn = nn.BatchNorm1d(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, x, only_fc=False, only_feat=False, **kwargs):
        if only_fc:
            return self.classifier(x)
        feat = F.relu(self.bn(self.conv(x)))
        if only_feat:
            return feat
        return {"logits": self.classifier(feat), "feat": feat}

    def group_matcher(self, coarse=False, prefix=""):
        return dict(stem=r"^{}conv".format(prefix), blocks=r"^{}bn".format(prefix))

    def no_weight_decay(self):
        return ["bn.weight", "bn.bias"]


def _leaf_names(net):
    return [n for n, _ in net.named_parameters() if not n.startswith("backbone.")]


@pytest.mark.parametrize("instance_on", ["feat", "logits"])
def test_leafnet_output_contract(instance_on):
    torch.manual_seed(8)
    net = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=4, instance_on=instance_on)).train()
    x = torch.randn(6, 20)
    out = net(x)
    assert set(out) == {"logits", "feat", "leaf_z", "leaf_balance", "leaf_gates"}
    assert out["logits"].shape == (6, 5) and out["feat"].shape == (6, 12)
    assert out["leaf_z"].shape == (6, 12)
    assert torch.allclose(out["leaf_z"].norm(dim=1), torch.ones(6), atol=1e-5)
    assert out["leaf_balance"].shape == () and out["leaf_balance"].item() > 0
    assert out["leaf_gates"]["semantic"].shape == (6, 4)
    k_dim = 12 if instance_on == "feat" else 5
    assert net.instance.dim == k_dim
    assert out["leaf_gates"]["instance"].shape == (6, 4)
    if instance_on == "logits":  # feat is the scaled unit-norm z
        assert torch.allclose(out["feat"], 16.0 * out["leaf_z"], atol=1e-5)

    net.eval()
    out = net(x)
    feat = net(x, only_feat=True)
    assert torch.allclose(feat, out["feat"])
    assert torch.allclose(net(feat, only_fc=True), out["logits"], atol=1e-6)
    if instance_on == "feat":
        assert torch.allclose(out["logits"], net.backbone.classifier(out["feat"]))


def test_leafnet_backward_reaches_gates_and_backbone():
    torch.manual_seed(9)
    net = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=4)).train()
    out = net(torch.randn(8, 20))
    (F.cross_entropy(out["logits"], torch.arange(8) % 5) + out["leaf_balance"]).backward()
    for name in ("semantic.w_gate", "instance.w_gate", "backbone.conv.weight", "semantic.fc1_weight"):
        assert dict(net.named_parameters())[name].grad.abs().sum() > 0, name


def test_leafnet_ablation_disabled_levels_have_no_parameters():
    bb = TinyBackbone()
    n_bb = sum(p.numel() for p in bb.parameters())
    none = LeafNet(bb, 5, LeafConfig(semantic=False, instance=False))
    assert _leaf_names(none) == [] and sum(p.numel() for p in none.parameters()) == n_bb
    assert none.semantic is None and none.instance is None
    out = none(torch.randn(3, 20))
    assert out["leaf_balance"].item() == 0.0
    assert out["leaf_gates"] == {"semantic": None, "instance": None}
    assert torch.allclose(out["feat"].norm(dim=1), torch.full((3,), 16.0))

    sem = LeafNet(TinyBackbone(), 5, LeafConfig(instance=False))
    assert all(n.startswith("semantic.") for n in _leaf_names(sem)) and _leaf_names(sem)
    inst = LeafNet(TinyBackbone(), 5, LeafConfig(semantic=False, instance_on="logits"))
    assert all(n.startswith("instance.") for n in _leaf_names(inst)) and _leaf_names(inst)
    assert inst(torch.randn(3, 20))["leaf_gates"]["semantic"] is None


def test_leafnet_faithful_gates_get_zero_grad():
    torch.manual_seed(10)
    net = LeafNet(TinyBackbone(), 5, LeafConfig(faithful=True)).train()
    out = net(torch.randn(8, 20))
    assert out["leaf_balance"].item() == 0.0
    assert torch.equal(out["leaf_gates"]["instance"].sum(1), torch.ones(8))  # constant top-1 gate
    F.cross_entropy(out["logits"], torch.arange(8) % 5).backward()
    assert torch.equal(net.semantic.w_gate.grad, torch.zeros_like(net.semantic.w_gate))
    assert torch.equal(net.instance.w_gate.grad, torch.zeros_like(net.instance.w_gate))


def test_leafnet_matcher_and_weight_decay():
    from semilearn.nets.utils import param_groups_layer_decay

    net = LeafNet(TinyBackbone(), 5, LeafConfig(num_experts=2))
    matcher = net.group_matcher()
    assert matcher["stem"].startswith("^backbone.") and "leaf" in matcher
    names = dict(net.named_parameters())
    nwd = net.no_weight_decay()
    assert "backbone.bn.weight" in nwd and "semantic.fc1_bias" in nwd
    assert set(nwd) <= set(names)
    groups = param_groups_layer_decay(net, lr=1.0, weight_decay=0.1, no_weight_decay_list=nwd, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    stem, leaf, head = (lr_of[id(names[n])] for n in ("backbone.conv.weight", "semantic.w_gate",
                                                      "backbone.classifier.weight"))
    assert stem < leaf < head  # LEAF levels form their own group between trunk and head


def test_leafnet_with_semilearn_wrn():
    from semilearn.core.utils import get_optimizer
    from semilearn.nets import wrn_28_2

    torch.manual_seed(11)
    net = build_leaf_net(wrn_28_2, 10, LeafConfig())
    assert isinstance(net, LeafNet) and net.num_features == 128
    out = net(torch.randn(2, 3, 32, 32))
    assert out["logits"].shape == (2, 10) and out["feat"].shape == (2, 128)
    assert out["leaf_gates"]["instance"].shape == (2, 8)
    assert torch.allclose(net(out["feat"], only_fc=True), out["logits"])
    assert net.group_matcher()["blocks"].startswith("^backbone.block")
    opt = get_optimizer(net, "SGD", lr=0.1, weight_decay=5e-4, layer_decay=0.9)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters()))


def test_feature_dim_fallbacks():
    class FcNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Sequential(nn.Linear(7, 3))

    class Headless(nn.Module):
        pass

    net = LeafNet(FcNet(), 3, LeafConfig(num_experts=2, top_k=1))
    assert net.num_features == 7
    with pytest.raises(TypeError, match="feature size"):
        LeafNet(Headless(), 3, LeafConfig())


def test_noiseless_gate_has_no_noise_weights_and_is_deterministic():
    m = ExpertGating(6, num_experts=4, noisy=False).train()
    assert m.w_noise is None and "w_noise" not in dict(m.named_parameters())
    v = torch.randn(5, 6)
    assert torch.equal(m(v)[1], m(v)[1])


def test_algorithm_layer_turns_config_errors_into_one_line_user_errors():
    """The layers raise ValueError / TypeError; wrap.py reports them as UserError naming the flag."""
    import argparse

    from leaf_plugin.algorithms.leaf_args import LEAF_ARGUMENTS, LeafWrapError, leaf_net, leaf_options
    from leaf_plugin.errors import UserError

    args = argparse.Namespace(**{a.name.lstrip("-"): a.default for a in LEAF_ARGUMENTS})
    args.leaf_top_k = 9
    with pytest.raises(UserError, match=r"^--leaf_top_k must be in 1\.\.num_experts \(8\), got 9$"):
        leaf_options(LeafConfig, args)
    args.leaf_top_k, args.leaf_feature_scale = 2, "big"
    with pytest.raises(UserError, match="^--leaf_feature_scale must be a finite number"):
        leaf_options(LeafConfig, args)
    args.leaf_feature_scale, args.leaf_min_pos = 16.0, 4
    with pytest.raises(UserError, match=r"^--leaf_min_pos must be in 1\.\.max_pos \(3\), got 4$"):
        leaf_options(LeafLoss, args)

    class Headless(nn.Module):
        pass

    with pytest.raises(LeafWrapError, match="^--net: leaf: cannot tell the feature size of Headless"):
        leaf_net(Headless(), 3, LeafConfig())


def test_recorded_fields_fill_what_an_older_checkpoint_predates_and_drop_what_is_gone():
    recorded = {"num_experts": 4, "semantic": False, "zero_init": True}  # an older asdict(LeafConfig)
    fields = LeafConfig.recorded_fields(recorded)
    assert fields["num_experts"] == 4 and fields["semantic"] is False
    assert fields["learn_scale"] is False and fields["normalize"] is True  # what runs did before those fields
    assert "zero_init" not in fields and set(fields) == set(LeafConfig.__dataclass_fields__)
    assert LeafConfig(**fields).num_experts == 4
