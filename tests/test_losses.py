"""Tests of leaf_plugin.losses: positive sets, concave weight, pairwise loss, NT-Xent."""
import math

import pytest
import torch
import torch.nn.functional as F

from leaf_plugin.losses import (
    ambiguous_loss,
    ambiguous_weight,
    faithful_ambiguous_loss,
    nt_xent,
    positive_set_size,
)


def _q7(top4):
    """C = 7 distribution: the given top 4, the rest spread evenly over 3 classes."""
    rest = (1.0 - sum(top4)) / 3
    return torch.tensor([list(top4) + [rest] * 3])


# ------------------------------------------------------------- positive set and weight
@pytest.mark.parametrize(
    "top4, n_expected, w_expected",
    [
        ((0.95, 0.02, 0.01, 0.01), 1, 0.9875),
        ((0.60, 0.25, 0.08, 0.04), 2, 0.9010),
        ((0.50, 0.20, 0.15, 0.10), 3, 0.8076),
    ],
)
def test_worked_examples(top4, n_expected, w_expected):
    q = _q7(top4)
    n = positive_set_size(q)
    assert n.dtype == torch.long and n.tolist() == [n_expected]
    assert ambiguous_weight(q, n).item() == pytest.approx(w_expected, abs=5e-5)


def test_worked_example_uniform():
    q = torch.full((1, 7), 1 / 7)
    n = positive_set_size(q)
    assert n.tolist() == [3]
    assert ambiguous_weight(q, n).item() == pytest.approx(0.0, abs=1e-6)


def test_worked_examples_batched_and_permuted():
    q = torch.cat([_q7((0.95, 0.02, 0.01, 0.01)), _q7((0.60, 0.25, 0.08, 0.04)),
                   _q7((0.50, 0.20, 0.15, 0.10)), torch.full((1, 7), 1 / 7)])
    perm = torch.tensor([3, 6, 0, 5, 1, 4, 2])
    n = positive_set_size(q[:, perm])
    assert n.tolist() == [1, 2, 3, 3]
    w = ambiguous_weight(q[:, perm], n)
    assert torch.allclose(w, torch.tensor([0.9875, 0.9010, 0.8076, 0.0]), atol=5e-5)


def test_weight_hand_formula_and_range():
    # n = 1 with top-1 below tau: S_2 = .5 + .45 >= .9 -> n = 1; mu = .95 / 2, q(2) = .45.
    q = torch.tensor([[0.50, 0.45, 0.05]])
    n = positive_set_size(q)
    assert n.tolist() == [1]
    expected = math.log(1 + 50 * (0.475 - 0.45)) / math.log(1 + 50 * 0.475)
    assert ambiguous_weight(q, n).item() == pytest.approx(expected, abs=1e-6)

    g = torch.Generator().manual_seed(0)
    q = torch.softmax(torch.randn(256, 10, generator=g) * 3, dim=1)
    n = positive_set_size(q, max_pos=4)
    assert n.min() >= 1 and n.max() <= 4
    w = ambiguous_weight(q, n)
    assert torch.isfinite(w).all() and (w >= 0).all() and (w <= 1).all()
    # small number of classes: n never exceeds C, weight stays defined
    q2 = torch.tensor([[0.6, 0.4], [0.5, 0.5], [1.0, 0.0]])
    n2 = positive_set_size(q2, tau=2.0, max_pos=5)
    assert n2.tolist() == [2, 2, 2]
    assert torch.isfinite(ambiguous_weight(q2, n2)).all()


def test_min_pos_raises_small_sets_only():
    # (.95,.02,.01,.01,...) -> 1 and (.60,.25,.08,.04,...) -> 2 by the rule; (.50,.20,.15,.10) -> 3
    q = torch.tensor([[0.95, 0.02, 0.01, 0.01, 0.01], [0.60, 0.25, 0.08, 0.04, 0.03], [0.50, 0.20, 0.15, 0.10, 0.05]])
    assert positive_set_size(q).tolist() == [1, 2, 3]
    assert positive_set_size(q, min_pos=2).tolist() == [2, 2, 3]
    assert positive_set_size(q, min_pos=3).tolist() == [3, 3, 3]
    # the weight follows the raised set: n = 2 for the first row, mu = S_3 / 3, q(3) = .01
    w = ambiguous_weight(q[:1], torch.tensor([2]))
    mu = 0.98 / 3
    assert w.item() == pytest.approx(math.log(1 + 50 * (mu - 0.01)) / math.log(1 + 50 * mu), abs=1e-6)
    _, n, w_loss = ambiguous_loss(torch.zeros(1, 5), q[:1], min_pos=2)
    assert n.tolist() == [2] and w_loss.item() == pytest.approx(w.item(), abs=1e-6)
    with pytest.raises(ValueError, match="min_pos"):
        positive_set_size(q, max_pos=3, min_pos=4)


# ------------------------------------------------------------------ ambiguous loss
def test_pairwise_loss_three_classes_by_hand():
    # q = (.5, .3, .2): S_2 = .8 < .9, S_3 = 1 >= .9 -> n = 2, P = {0, 1}, N = {2}.
    q = torch.tensor([[0.5, 0.3, 0.2]])
    s = torch.tensor([[2.0, 1.0, 0.5]])
    loss, n, w = ambiguous_loss(s, q)
    l_hand = math.log(1 + math.exp(0.5 - 2.0) + math.exp(0.5 - 1.0))
    mu = 1.0 / 3
    w_hand = math.log(1 + 50 * (mu - 0.2)) / math.log(1 + 50 * mu)
    assert n.tolist() == [2]
    assert w.item() == pytest.approx(w_hand, abs=1e-6)
    assert loss.item() == pytest.approx(w_hand * l_hand, abs=1e-6)


def _pairwise_reference(s, q, n):
    out = []
    for i in range(s.shape[0]):
        order = q[i].argsort(descending=True).tolist()
        pos, neg = order[: n[i]], order[n[i]:]
        total = sum(math.exp(s[i, m] - s[i, p]) for m in neg for p in pos)
        out.append(math.log1p(total))
    return torch.tensor(out, dtype=torch.float64)


def test_pairwise_loss_matches_double_sum():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(32, 7, generator=g, dtype=torch.float64)
    q = torch.softmax(torch.randn(32, 7, generator=g) * 2, dim=1)
    loss, n, w = ambiguous_loss(s, q)
    ref = _pairwise_reference(s, q, n.tolist()) * w.double()
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    assert set(n.tolist()) >= {1, 2, 3}  # the batch exercises every set size


def test_single_positive_is_cross_entropy_of_top_class():
    s = torch.tensor([[0.3, 2.0, -1.0, 0.5]])
    q = torch.tensor([[0.02, 0.96, 0.01, 0.01]])
    loss, n, w = ambiguous_loss(s, q)
    ce = F.cross_entropy(s, torch.tensor([1]))
    assert n.tolist() == [1]
    assert loss.item() == pytest.approx(w.item() * ce.item(), abs=1e-6)


def test_loss_gradient_goes_to_logits_only():
    s = torch.randn(8, 5, requires_grad=True)
    q = torch.softmax(torch.randn(8, 5), dim=1).requires_grad_(True)
    loss, _, _ = ambiguous_loss(s, q)
    loss.sum().backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert q.grad is None


def test_empty_negative_set_gives_zero_and_finite_grad():
    s = torch.randn(4, 3, requires_grad=True)
    q = torch.softmax(torch.randn(4, 3), dim=1)
    loss, n, _ = ambiguous_loss(s, q, tau=2.0, max_pos=3)  # every class positive
    assert n.tolist() == [3, 3, 3, 3]
    assert torch.equal(loss, torch.zeros(4))
    loss.sum().backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_and_huge_logits_are_finite(dtype):
    g = torch.Generator().manual_seed(2)
    s = (torch.randn(16, 7, generator=g) * 1e4).to(dtype).requires_grad_(True)
    q = torch.softmax(torch.randn(16, 7, generator=g), dim=1).to(dtype)
    loss, _, w = ambiguous_loss(s, q)
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    assert torch.isfinite(w).all()
    loss.sum().backward()
    assert torch.isfinite(s.grad.float()).all()

    s32 = torch.randn(16, 7, generator=g) * 1e4
    loss32, _, _ = ambiguous_loss(s32, q.float())
    assert torch.isfinite(loss32).all() and loss32.max() > 1e3  # large but finite


def test_autocast_inputs_are_finite():
    s = torch.randn(8, 7) * 1e4
    q = torch.softmax(torch.randn(8, 7), dim=1)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _, _ = ambiguous_loss(s, q)
        c = nt_xent(z1, z2)
    assert torch.isfinite(loss).all() and loss.dtype == torch.float32
    assert torch.isfinite(c) and c.dtype == torch.float32
    assert c.item() == pytest.approx(nt_xent(z1, z2).item(), rel=1e-5)


# --------------------------------------------------------------- faithful variant
def test_faithful_loss_rescales_to_ce_times_confident_fraction():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(10, 7, generator=g, requires_grad=True)
    q = torch.softmax(torch.randn(10, 7, generator=g) * 3, dim=1)
    mask = torch.tensor([1, 0, 1, 0, 0, 0, 0, 0, 0, 1.0])
    ce = torch.tensor(2.5)
    out = faithful_ambiguous_loss(s, q, mask, ce)
    assert out.item() == pytest.approx(2.5 * 0.3, rel=1e-5)

    per_sample, _, _ = ambiguous_loss(s, q)
    amb = per_sample.mean()
    (g_ref,) = torch.autograd.grad(amb * (2.5 / amb.item()) * 0.3, s)
    (g_out,) = torch.autograd.grad(faithful_ambiguous_loss(s, q, mask, ce), s)
    assert torch.allclose(g_out, g_ref, atol=1e-6)


def test_faithful_loss_zero_ambiguous_term_is_zero():
    s = torch.randn(4, 7, requires_grad=True)
    q = torch.full((4, 7), 1 / 7)  # uniform -> w = 0 -> amb = 0
    out = faithful_ambiguous_loss(s, q, torch.ones(4), torch.tensor(1.7))
    assert out.item() == 0.0
    out.backward()
    assert torch.isfinite(s.grad).all()


# --------------------------------------------------------------------------- NT-Xent
def _nt_xent_reference(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    m = z1.shape[0]
    total = 0.0
    for i in range(2 * m):
        pos = (i + m) % (2 * m)
        num = math.exp(float(z[i] @ z[pos]) / t)
        den = sum(math.exp(float(z[i] @ z[j]) / t) for j in range(2 * m) if j != i)
        total += -math.log(num / den)
    return total / (2 * m)


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_nt_xent_matches_double_loop(t):
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    assert nt_xent(z1, z2, t).item() == pytest.approx(_nt_xent_reference(z1, z2, t), rel=1e-5)
    # normalised inside: row scaling does not matter
    assert nt_xent(3 * z1, 0.1 * z2, t).item() == pytest.approx(nt_xent(z1, z2, t).item(), rel=1e-5)


def test_nt_xent_select_restricts_rows():
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    sel = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0], dtype=torch.bool)
    ref = _nt_xent_reference(z1[sel], z2[sel], 0.07)
    assert nt_xent(z1, z2, select=sel).item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("num_selected", [0, 1])
def test_nt_xent_too_few_rows_is_exact_zero(num_selected):
    z1 = torch.randn(5, 4, requires_grad=True)
    z2 = torch.randn(5, 4, requires_grad=True)
    sel = torch.zeros(5, dtype=torch.bool)
    sel[:num_selected] = True
    out = nt_xent(z1, z2, select=sel)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(z1.grad, torch.zeros_like(z1)) and torch.equal(z2.grad, torch.zeros_like(z2))
    assert nt_xent(z1[:1], z2[:1]).item() == 0.0


def test_nt_xent_identical_views_lower_than_random():
    g = torch.Generator().manual_seed(6)
    z = torch.randn(16, 32, generator=g)
    assert nt_xent(z, z) < nt_xent(z, torch.randn(16, 32, generator=g))
