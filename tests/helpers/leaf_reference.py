"""Reference implementations of LEAF's layers, for tests and benchmarks only.

Everything here is written out independently of :class:`leaf_plugin.layers.ExpertGating`'s own
helpers (``_gate``, ``_prob_in_top_k``, ``_balance``, ``cv_squared``): it reads only the module's
parameters and settings, so comparing the module with it checks the module.

- :func:`reference_gates`: Shazeer's noisy top-k gate, ``torch.topk`` + a softmax written out,
  and the load (smooth ``P(expert in top-k)`` with noise, routed counts without).
- :func:`reference_balance`: ``coef * (cv^2(importance) + cv^2(load))`` by hand.
- :func:`loop_reference`: the whole level with a plain Python loop over experts (differentiable).
- :class:`LoopReference`: that loop as an ``nn.Module`` sharing a gating module's parameters
  (the baseline of ``benchmarks/bench_layers.py``).
- :func:`build_leaf_net`: build a backbone with a semilearn net builder and wrap it in ``LeafNet``.

Import from tests as ``from helpers.leaf_reference import ...`` (pytest puts ``tests/`` on
``sys.path``); benchmarks add ``tests/`` to ``sys.path`` first.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from leaf_plugin.layers import ExpertGating, LeafConfig, LeafNet

__all__ = ["reference_gates", "reference_balance", "loop_reference", "LoopReference", "build_leaf_net"]


def _phi(x: Tensor) -> Tensor:
    """Standard normal CDF, ``(1 + erf(x / sqrt 2)) / 2``."""
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _cv2(x: Tensor) -> Tensor:
    """``var / (mean^2 + 1e-10)`` with the unbiased variance; 0 for fewer than 2 values."""
    x = x.float()
    n = x.numel()
    if n < 2:
        return x.new_zeros(())
    mean = x.sum() / n
    var = ((x - mean) ** 2).sum() / (n - 1)
    return var / (mean * mean + 1e-10)


def reference_gates(m: ExpertGating, v: Tensor, noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``(gates [B,K], load [K])`` of ``m`` on ``v``; ``noise`` is the standard normal draw.

    Gates: the top-k of ``v W_g + noise * (softplus(v W_n) + 0.01)`` (noise only when ``m`` is
    noisy and training) get ``exp(l - max) / sum exp(l - max)`` over the top-k, the others 0.
    Load: with noise and ``k < K``, Shazeer's ``sum_b P(expert in top-k | other noises)``, where
    an expert now in the top-k must stay above the (k+1)-th noisy logit and one outside must beat
    the k-th; otherwise the number of samples routed to each expert. Faithful modules: load 0.
    """
    K, k = m.num_experts, m.top_k
    clean = (v @ m.w_gate).float()
    noisy = m.noisy and m.training
    if noisy:
        std = F.softplus((v @ m.w_noise).float()) + 0.01
        if noise is None:
            noise = torch.randn_like(clean)
        logits = clean + noise * std
    else:
        logits = clean
    top_vals, top_idx = torch.topk(logits, k, dim=1)
    e = torch.exp(top_vals - top_vals.max(dim=1, keepdim=True).values)
    gates = torch.zeros_like(logits).scatter(1, top_idx, e / e.sum(dim=1, keepdim=True))
    if m.faithful:
        return gates, torch.zeros(K, dtype=logits.dtype, device=logits.device)
    if noisy and k < K:
        ranked = torch.topk(logits, k + 1, dim=1).values
        thr_in, thr_out = ranked[:, k : k + 1], ranked[:, k - 1 : k]
        thr = torch.where(logits > thr_in, thr_in, thr_out)
        load = _phi((clean - thr) / std).sum(0)
    else:
        load = torch.zeros_like(logits).scatter(1, top_idx, 1.0).sum(0)
    return gates, load


def reference_balance(m: ExpertGating, gates: Tensor, load: Tensor) -> Tensor:
    """``balance_coef * (cv^2(importance) + cv^2(load))``, importance = ``gates.sum(0)``; 0 when faithful."""
    if m.faithful or m.balance_coef == 0:
        return gates.new_zeros(())
    return m.balance_coef * (_cv2(gates.sum(0)) + _cv2(load))


def loop_reference(m: ExpertGating, v: Tensor, noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """``(out, gates, balance)`` of ``m`` on ``v`` with a Python loop over the experts.

    Default: ``out = v + sum_k G_k (relu(v W1_k^T + b1_k) W2_k + b2_k)``. Faithful (one shared
    expert ``E(v) = v + MLP(v)`` in every slot): ``out = log(sum_k G_k exp(E(v)))``, summed in a
    numerically safe way (``G_k = 0`` slots drop out).
    """
    gates, load = reference_gates(m, v, noise)
    if m.faithful:
        hid = F.relu(F.linear(v, m.fc1_weight[0], m.fc1_bias[0]))
        e = v + hid @ m.fc2_weight[0] + m.fc2_bias[0]
        top = e.max(dim=1, keepdim=True).values.detach()  # log sum G exp(e) = top + log sum G exp(e - top)
        acc = torch.zeros_like(e)
        for k in range(m.num_experts):
            acc = acc + gates[:, k : k + 1] * torch.exp(e - top)
        out = top + torch.log(acc)
    else:
        out = v
        for k in range(m.num_experts):
            hid = F.relu(F.linear(v, m.fc1_weight[k], m.fc1_bias[k]))
            out = out + gates[:, k : k + 1] * (hid @ m.fc2_weight[k] + m.fc2_bias[k])
    return out, gates, reference_balance(m, gates, load)


class LoopReference(nn.Module):
    """:func:`loop_reference` as a module around ``gating`` (same parameters, same settings)."""

    def __init__(self, gating: ExpertGating) -> None:
        super().__init__()
        self.gating = gating

    def forward(self, v: Tensor, noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        return loop_reference(self.gating, v, noise)


def build_leaf_net(
    net_builder: Callable[..., nn.Module], num_classes: int, config: LeafConfig, **builder_kwargs: Any
) -> LeafNet:
    """Build the backbone with ``net_builder(num_classes=..., **builder_kwargs)`` and wrap it."""
    return LeafNet(net_builder(num_classes=num_classes, **builder_kwargs), num_classes, config)
