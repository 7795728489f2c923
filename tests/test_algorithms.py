"""LEAF algorithms in semilearn: registration, wrap() on many hosts, host state, ablations, checkpoints."""
from __future__ import annotations

import logging

import pytest
import torch

import leaf_plugin
from conftest import TINY

LEAF_NAMES = ["leaf_fixmatch", "leaf_flexmatch", "leaf_freematch", "leaf"]


def build(algorithm, tmp_path, *extra, cls=None):
    """An algorithm object built exactly as ``semilearn train`` builds it."""
    from leaf_plugin.arguments import parse_train_args
    from leaf_plugin.arguments import build_algorithm
    from leaf_plugin.nets.builders import net_builder_for

    args = parse_train_args(["--algorithm", algorithm if cls is None else "fixmatch", *TINY,
                             "--save_dir", str(tmp_path), "--num_train_iter", "60", *map(str, extra)])
    args.algorithm = algorithm
    logger = logging.getLogger("test")
    if cls is None:
        return build_algorithm(args, logger)
    from leaf_plugin.algorithms.leaf_args import complete_algorithm_args
    complete_algorithm_args(args, cls.get_argument())  # a class wrapped in the test, not in the registry
    args.distributed = False
    return cls(args, net_builder_for(args), None, logger)


def first_batch(alg):
    lb = next(iter(alg.loader_dict["train_lb"]))
    ulb = next(iter(alg.loader_dict["train_ulb"]))
    return alg.process_batch(**lb, **ulb)


def step(alg, batch):
    """One optimisation step of the algorithm on ``batch`` (its own hooks update the model)."""
    alg.out_dict, alg.log_dict = alg.train_step(**batch)
    alg.call_hook("after_train_step", "ParamUpdateHook")
    alg.it += 1
    return alg.log_dict


def test_registered_in_semilearn_registry():
    from semilearn.algorithms import name2alg

    for name in LEAF_NAMES:
        assert name in name2alg
        assert issubclass(name2alg[name], leaf_plugin.algorithms.LeafAlgorithm)


@pytest.mark.parametrize("name", LEAF_NAMES)
def test_loss_decreases_on_a_fixed_batch(tmp_path, name):
    torch.manual_seed(0)
    alg = build(name, tmp_path, "--lr", "0.03", "--batch_size", "16")
    alg.ema = None
    batch = first_batch(alg)
    logs = [dict(step(alg, batch)) for _ in range(50)]
    total = torch.tensor([log["train/total_loss"] for log in logs])
    sup = torch.tensor([log["train/sup_loss"] for log in logs])
    assert torch.isfinite(total).all()
    # The labeled part of a fixed batch is memorised; the unlabeled terms grow as the host's mask
    # accepts more samples (FreeMatch's threshold adapts), so the total only has to fall overall.
    assert sup[-5:].mean() < 0.25 * sup[:5].mean(), sup.tolist()
    assert total[-10:].mean() < total[:5].mean(), total.tolist()
    for key in ("train/leaf_amb_loss", "train/leaf_con_loss", "train/leaf_balance_loss", "train/leaf_pos_size",
                "train/leaf_mask_ratio", "train/leaf_semantic_expert0", "train/leaf_instance_expert7"):
        assert key in alg.log_dict


def test_flexmatch_state_is_the_hosts(tmp_path):
    alg = build("leaf_flexmatch", tmp_path, "--p_cutoff", "0.5", "--thresh_warmup", "false")
    hook = alg.hooks_dict["MaskingHook"]
    assert type(hook).__name__ == "FlexMatchThresholdingHook"
    before = hook.selected_label.clone()
    batch = first_batch(alg)
    for _ in range(30):
        step(alg, batch)
    assert not torch.equal(before, hook.selected_label)  # class-wise learning status was updated
    assert hook.classwise_acc.sum() > 0


def test_freematch_state_is_the_hosts(tmp_path):
    alg = build("leaf_freematch", tmp_path)
    hook = alg.hooks_dict["MaskingHook"]
    assert type(hook).__name__ == "FreeMatchThresholdingHook"
    batch = first_batch(alg)
    step(alg, batch)
    p_model, time_p = hook.p_model.clone(), hook.time_p.clone()
    step(alg, batch)
    assert not torch.equal(p_model, hook.p_model) and not torch.equal(time_p, hook.time_p)


@pytest.mark.parametrize("host_view", ["mean", "own"])
def test_host_sees_the_average_of_two_weak_views(tmp_path, host_view):
    """The masking hook receives the mean of the two weak views' probabilities (``own``: its weak view's)."""
    alg = build("leaf_fixmatch", tmp_path, "--leaf_host_view", host_view)
    seen = {}
    original = alg.call_hook

    def spy(fn_name, hook_name=None, *args, **kwargs):
        if fn_name == "masking":
            seen["probs"] = kwargs["logits_x_ulb"].detach().clone()
        return original(fn_name, hook_name, *args, **kwargs)

    alg.call_hook = spy
    batch = first_batch(alg)
    torch.manual_seed(1)
    alg.train_step(**batch)
    alg.model.eval()  # the same views again, without gate noise or BN updates, to recompute by hand
    with torch.no_grad():
        alg.model.train()
        torch.manual_seed(1)
        n_lb = batch["x_lb"].shape[0]
        out = alg.model(torch.cat([batch["x_lb"], batch["x_ulb_w"], batch["x_ulb_s"], batch["x_ulb_w_2"]]))
    logits = out["logits"]
    n_u = batch["x_ulb_w"].shape[0]
    w1 = logits[n_lb:n_lb + n_u]
    w2 = logits[n_lb + 2 * n_u:]
    expected = (torch.softmax(w1, -1) + torch.softmax(w2, -1)) / 2 if host_view == "mean" else torch.softmax(w1, -1)
    torch.testing.assert_close(seen["probs"], expected, atol=1e-4, rtol=1e-4)


def test_unconfident_selects_by_the_averaged_views_not_the_hosts_mask(tmp_path):
    alg = build("leaf_fixmatch", tmp_path, "--leaf_amb_on", "unconfident", "--leaf_confidence", "0.6")
    q = torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.6, 0.4], [0.2, 0.8]])
    mask = torch.tensor([0.0, 1.0, 0.0, 1.0])  # the host's decisions play no part
    selected = alg.leaf_selection(mask, q)
    assert selected.tolist() == [False, True, False, False]
    assert alg.leaf_weights(mask, selected).tolist() == [0.0, 1.0, 0.0, 0.0]
    rejected = build("leaf_fixmatch", tmp_path / "r")
    soft = torch.tensor([0.0, 0.25, 1.0, 0.5])
    assert rejected.leaf_selection(soft, q).tolist() == [True, True, False, False]
    assert rejected.leaf_weights(soft, rejected.leaf_selection(soft, q)).tolist() == [1.0, 0.75, 0.0, 0.5]
    log = step(alg, first_batch(alg))
    assert torch.isfinite(torch.tensor(log["train/total_loss"]))


@pytest.mark.parametrize("flags,other_flags,fragment", [
    (("--leaf_learn_scale", "true"), ("--leaf_learn_scale", "false"), "learn_scale"),
    (("--leaf_expert_init", "rezero"), (), "rezero"),
])
def test_variant_trains_and_its_checkpoint_refuses_another_shape(tmp_path, flags, other_flags, fragment):
    alg = build("leaf_fixmatch", tmp_path, *flags)
    before = {n: p.detach().clone() for n, p in alg.model.named_parameters() if n.endswith(("gain", "log_scale"))}
    batch = first_batch(alg)
    for _ in range(3):
        log = step(alg, batch)
    assert torch.isfinite(torch.tensor(log["train/total_loss"]))
    assert before and all(not torch.equal(p, dict(alg.model.named_parameters())[n]) for n, p in before.items())
    alg.save_model("variant.pth", str(tmp_path))
    alg.load_model(str(tmp_path / "variant.pth"))  # the same shape loads
    other = build("leaf_fixmatch", tmp_path / "plain", *other_flags)
    with pytest.raises(leaf_plugin.errors.UserError, match=fragment):
        other.load_model(str(tmp_path / "variant.pth"))


def test_unnormalised_head_flag_reaches_the_network_and_trains(tmp_path):
    alg = build("leaf_fixmatch", tmp_path, "--leaf_normalize", "false")
    assert alg.model.config.normalize is False
    log = step(alg, first_batch(alg))
    assert torch.isfinite(torch.tensor(log["train/total_loss"]))
    both = build("leaf_fixmatch", tmp_path / "both", "--leaf_normalize", "false", "--leaf_learn_scale", "true")
    assert both.model.config.learn_scale is False and both.model.log_scale is None  # no scale, nothing to learn


def test_the_leaf_hosts_learn_the_head_scale_by_default(tmp_path):
    from leaf_plugin.algorithms import LEAF_ALGORITHMS
    from semilearn.algorithms.fixmatch import FixMatch

    def default(cls):
        return {a.name: a.default for a in cls.get_argument()}["--leaf_learn_scale"]

    assert [default(LEAF_ALGORITHMS[n]) for n in ("leaf_fixmatch", "leaf_flexmatch", "leaf_freematch")] == \
        [True, True, True]
    assert default(LEAF_ALGORITHMS["leaf"]) is False and default(leaf_plugin.wrap(FixMatch)) is False
    alg = build("leaf_flexmatch", tmp_path)
    assert alg.model.config.learn_scale and float(alg.model.log_scale.detach().exp()) == pytest.approx(16.0)
    assert alg.ema_model.log_scale is not None
    faithful = build("leaf_flexmatch", tmp_path / "faithful", "--leaf_faithful", "true")
    assert faithful.model.log_scale is None  # the released code's fixed head


@pytest.mark.parametrize("flag,term,params", [
    ("--leaf_category", "train/leaf_amb_loss", None),
    ("--leaf_semantic", None, "semantic"),
    ("--leaf_instance", None, "instance"),
])
def test_ablation_flags_switch_terms_off(tmp_path, flag, term, params):
    alg = build("leaf_fixmatch", tmp_path, flag, "false")
    log = step(alg, first_batch(alg))
    if term:
        assert log[term] == 0.0
    if params:
        names = [n for n, _ in alg.model.named_parameters()]
        assert not any(n.startswith(params + ".") for n in names), names
        assert not any(k.startswith(f"train/leaf_{params}_expert") for k in log)


def test_both_gating_levels_off_means_no_balance_term(tmp_path):
    alg = build("leaf_fixmatch", tmp_path, "--leaf_semantic", "false", "--leaf_instance", "false",
                "--leaf_lambda_c", "0")
    log = step(alg, first_batch(alg))
    assert log["train/leaf_balance_loss"] == 0.0 and log["train/leaf_con_loss"] == 0.0


def test_checkpoint_then_one_more_step_equals_no_interruption(tmp_path):
    torch.manual_seed(0)
    a = build("leaf_flexmatch", tmp_path / "a", "--p_cutoff", "0.6")
    a.call_hook("before_run", "EMAHook")
    batch = first_batch(a)
    for _ in range(3):
        step(a, batch)
    a.save_model("ckpt.pth", str(tmp_path))
    torch.manual_seed(123)
    expected = step(a, batch)
    torch.manual_seed(99)
    b = build("leaf_flexmatch", tmp_path / "b", "--p_cutoff", "0.6")
    b.call_hook("before_run", "EMAHook")
    b.load_model(str(tmp_path / "ckpt.pth"))
    b.ema.load(b.ema_model)
    assert b.it == 3
    torch.manual_seed(123)
    got = step(b, batch)
    for key in ("train/sup_loss", "train/unsup_loss", "train/leaf_amb_loss", "train/leaf_con_loss",
                "train/total_loss"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    for (n, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=n)
    torch.testing.assert_close(a.hooks_dict["MaskingHook"].classwise_acc, b.hooks_dict["MaskingHook"].classwise_acc)


@pytest.mark.parametrize("host", ["softmatch", "pseudolabel", "uda"])
def test_wrap_other_usb_hosts(tmp_path, host):
    from semilearn.core.utils import ALGORITHMS

    cls = leaf_plugin.wrap(ALGORITHMS[host])
    alg = build(f"leaf_{host}", tmp_path, cls=cls)
    batch = first_batch(alg)
    assert "x_ulb_s" in batch and "x_ulb_w_2" in batch
    log = step(alg, batch)
    assert torch.isfinite(torch.tensor(log["train/total_loss"]))
    assert "train/leaf_amb_loss" in log and "train/leaf_con_loss" in log


def test_wrap_a_users_own_algorithm(tmp_path):
    from semilearn.algorithms.hooks import FixedThresholdingHook, PseudoLabelingHook
    from semilearn.core.algorithmbase import AlgorithmBase

    class MyMatch(AlgorithmBase):
        """A user's algorithm: weak-view pseudo-labels, separate forwards, soft mask."""

        def __init__(self, args, net_builder, tb_log=None, logger=None):
            super().__init__(args, net_builder, tb_log, logger)
            self.p_cutoff = 0.95

        def set_hooks(self):
            self.register_hook(PseudoLabelingHook(), "PseudoLabelingHook")
            self.register_hook(FixedThresholdingHook(), "MaskingHook")
            super().set_hooks()

        def train_step(self, x_lb, y_lb, x_ulb_w, x_ulb_s):
            logits_lb = self.model(x_lb)["logits"]
            with torch.no_grad():
                logits_w = self.model(x_ulb_w)["logits"]
            logits_s = self.model(x_ulb_s)["logits"]
            mask = self.call_hook("masking", "MaskingHook", logits_x_ulb=logits_w)
            target = self.call_hook("gen_ulb_targets", "PseudoLabelingHook", logits=logits_w, use_hard_label=True)
            sup = self.ce_loss(logits_lb, y_lb, reduction="mean")
            unsup = self.consistency_loss(logits_s, target, "ce", mask=mask)
            total = sup + unsup
            return self.process_out_dict(loss=total), self.process_log_dict(total_loss=total.item())

        @staticmethod
        def get_argument():
            return []

    cls = leaf_plugin.wrap(MyMatch, leaf_lambda_c=0.2)
    assert any(a.name == "--leaf_lambda_c" and a.default == 0.2 for a in cls.get_argument())
    alg = build("leaf_mymatch", tmp_path, cls=cls)
    log = step(alg, first_batch(alg))
    assert "train/leaf_amb_loss" in log and torch.isfinite(torch.tensor(log["train/total_loss"]))


def test_wrap_refuses_hosts_it_cannot_hook_into():
    from semilearn.core.utils import ALGORITHMS

    with pytest.raises(leaf_plugin.LeafWrapError, match="no weak unlabeled view"):
        leaf_plugin.wrap(ALGORITHMS["supervised"])
    with pytest.raises(leaf_plugin.LeafWrapError, match="no masking hook"):
        leaf_plugin.wrap(ALGORITHMS["meanteacher"])
    with pytest.raises(leaf_plugin.LeafWrapError, match="subclass of semilearn's AlgorithmBase"):
        leaf_plugin.wrap(dict)
    with pytest.raises(leaf_plugin.LeafWrapError, match="unknown LEAF option 'leaf_lamda_c'"):
        leaf_plugin.wrap(ALGORITHMS["fixmatch"], leaf_lamda_c=0.1)
