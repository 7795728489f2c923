"""Noisy top-k expert gating (LEAF's semantic / instance level).

``ExpertGating`` splits a feature ``v`` into ``K`` expert components and fuses them with a
learned sparse gate (Shazeer et al. 2017, "Outrageously Large Neural Networks"):

    out = v + sum_k G_k(v) * E_k(v),    G = softmax over the top-k of (v W_g + noise)

All experts run on all samples with one matrix product per layer (the experts' first layers
are stacked into one ``d -> K*h`` map; the gate-weighted sum of their second layers is one
``K*h -> d`` map), so there is no Python loop over experts and no index dispatch.
``faithful=True`` reproduces the authors' released code instead (one shared expert, top-1
gate, log-sum-exp fusion, no balance term).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ExpertGating", "cv_squared"]


def cv_squared(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Squared coefficient of variation ``var / (mean^2 + eps)`` (unbiased var, as Shazeer)."""
    x = x.float()
    if x.numel() < 2:
        return x.new_zeros(())
    return x.var() / (x.mean() ** 2 + eps)


def _sync_sum(x: Tensor) -> Tensor:
    """Differentiable all-reduce (sum) across ranks."""
    import warnings

    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # deprecated for _functional_collectives, which has no autograd here
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(x, op=dist.ReduceOp.SUM)


class ExpertGating(nn.Module):
    """K residual-MLP experts (d -> d//2 -> d) fused by a noisy top-k gate.

    Args:
        dim: feature size ``d``.
        num_experts: number of experts ``K``.
        top_k: experts kept per sample (``1 <= top_k <= K``); forced to 1 when ``faithful``.
        noisy: add Shazeer's learned gate noise in training.
        balance_coef: weight of the load-balancing term ``cv^2(importance) + cv^2(load)``.
        faithful: reproduce the released code (one shared expert used for all K slots,
            ``E(v) = v + MLP(v)``, top-1 so the gate is a constant 1 and its weights get exactly
            zero gradient, fusion ``log(sum_k G_k exp(E_k(v)))``, balance term 0).
        sync_balance: when training under ``torch.distributed`` with world size > 1, sum
            importance and load over ranks (differentiably) before the cv^2, so the DDP balance
            term equals the single-process one on the concatenated batch.

        zero_init: start every expert's second layer (weights and bias) at zero, so the level
            is the identity at the start (``out = v``) and a pretrained feature reaches the
            classifier unchanged; the experts' first layers and the gate keep their random init,
            the second layers get gradient from the first step, the gate from the second.
        rezero: experts initialised as usual, their sum multiplied by a learned scalar ``gain``
            that starts at 0 (ReZero): the level starts as the identity, the gain gets gradient
            from the first step and the experts from the second.

    Init: expert weights and biases like ``nn.Linear`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    the second layers zero with ``zero_init``.
    ``w_gate`` uses the same small uniform init instead of Shazeer's zeros: a zero gate gives
    exact ties in eval / without noise, and ``topk`` then routes every sample to experts
    ``0..k-1``; a small random gate routes input-dependently from the first step while still
    starting close to uniform. ``w_noise`` (only built when ``noisy``) is zero, so the initial
    noise std is ``softplus(0) + 0.01`` = 0.70.

    ``forward(v)`` returns ``(out [B,d], gates [B,K], balance [])``.
    """

    def __init__(
        self,
        dim: int,
        num_experts: int = 8,
        top_k: int = 2,
        noisy: bool = True,
        balance_coef: float = 0.01,
        faithful: bool = False,
        sync_balance: bool = True,
        zero_init: bool = False,
        rezero: bool = False,
    ) -> None:
        super().__init__()
        if dim < 1 or num_experts < 1:
            raise ValueError(f"dim and num_experts must be >= 1, got {dim}, {num_experts}")
        if faithful:
            top_k = 1
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in 1..{num_experts}, got {top_k}")
        self.dim = dim
        self.hidden = max(1, dim // 2)
        self.num_experts = num_experts
        self.top_k = top_k
        self.noisy = noisy
        self.balance_coef = balance_coef
        self.faithful = faithful
        self.sync_balance = sync_balance
        self.zero_init = zero_init
        if rezero and (faithful or zero_init):
            raise ValueError("rezero is for the uniform experts: not with faithful or zero_init")
        # ReZero (Bachlechner et al. 2020): out = v + gain * experts, the gain learned from 0
        self.gain = nn.Parameter(torch.zeros(())) if rezero else None

        n_params = 1 if faithful else num_experts  # faithful: one module shared by all slots
        d, h = dim, self.hidden
        # both weights [P, h, d]: fc1_weight[k] is Linear(d, h).weight, fc2_weight[k] is
        # Linear(h, d).weight.T, so either layer of all experts is a single [B, P*h] matmul
        self.fc1_weight = nn.Parameter(torch.empty(n_params, h, d))
        self.fc1_bias = nn.Parameter(torch.empty(n_params, h))
        self.fc2_weight = nn.Parameter(torch.empty(n_params, h, d))
        self.fc2_bias = nn.Parameter(torch.empty(n_params, d))
        self.w_gate = nn.Parameter(torch.empty(d, num_experts))
        # no noise weights when there is no noise (no parameter that never gets a gradient)
        self.w_noise = nn.Parameter(torch.empty(d, num_experts)) if noisy else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        b1, b2 = 1.0 / math.sqrt(self.dim), 1.0 / math.sqrt(self.hidden)
        for p, b in (
            (self.fc1_weight, b1),
            (self.fc1_bias, b1),
            (self.fc2_weight, b2),
            (self.fc2_bias, b2),
            (self.w_gate, b1),
        ):
            nn.init.uniform_(p, -b, b)
        if self.w_noise is not None:
            nn.init.zeros_(self.w_noise)
        if self.gain is not None:
            nn.init.zeros_(self.gain)
        if self.zero_init:
            nn.init.zeros_(self.fc2_weight)
            nn.init.zeros_(self.fc2_bias)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_experts={self.num_experts}, top_k={self.top_k}, "
            f"noisy={self.noisy}, faithful={self.faithful}"
        )

    # ----------------------------------------------------------------- gate
    def _gate(self, v: Tensor, noise: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """``(gates [B,K], log_gates [B,K] (-inf off the top-k; faithful only), load [K])``."""
        clean = (v @ self.w_gate).float()  # gate math in float32 (autocast-safe)
        use_noise = self.noisy and self.training
        if use_noise:
            std = F.softplus((v @ self.w_noise).float()) + 0.01
            if noise is None:
                noise = torch.randn_like(clean)
            logits = clean + noise * std
        else:
            logits = clean
        k, K = self.top_k, self.num_experts
        m = min(k + 1, K)
        top_vals, top_idx = logits.topk(m, dim=1)
        top_idx = top_idx[:, :k]
        log_top = torch.log_softmax(top_vals[:, :k], dim=1)
        gates = torch.zeros_like(logits).scatter(1, top_idx, log_top.exp())
        if self.faithful:
            log_gates = torch.full_like(logits, float("-inf")).scatter(1, top_idx, log_top)
            return gates, log_gates, gates.new_zeros(K)
        if use_noise and k < K:
            load = self._prob_in_top_k(clean, logits, std, top_vals).sum(0)
        else:  # number of samples routed to each expert
            load = torch.zeros_like(gates).scatter(1, top_idx, 1.0).sum(0)
        return gates, None, load

    def _prob_in_top_k(self, clean: Tensor, noisy: Tensor, std: Tensor, top_vals: Tensor) -> Tensor:
        """Shazeer's smooth P(expert in top-k | other noises fixed), shape [B,K]."""
        k = self.top_k
        thr_if_in = top_vals[:, k : k + 1]  # (k+1)-th largest: beat it to stay in
        thr_if_out = top_vals[:, k - 1 : k]  # k-th largest: beat it to get in
        is_in = noisy > thr_if_in
        p_in = torch.special.ndtr((clean - thr_if_in) / std)
        p_out = torch.special.ndtr((clean - thr_if_out) / std)
        return torch.where(is_in, p_in, p_out)

    def _balance(self, gates: Tensor, load: Tensor) -> Tensor:
        if self.faithful or self.balance_coef == 0:
            return gates.new_zeros(())
        importance = gates.sum(0)
        if (
            self.sync_balance
            and self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            importance, load = _sync_sum(importance), _sync_sum(load)
        return self.balance_coef * (cv_squared(importance) + cv_squared(load))

    # -------------------------------------------------------------- experts
    def _hidden(self, v: Tensor) -> Tensor:
        """First layer of every expert at once: ``[B, P*h]`` (P = K, or 1 when faithful)."""
        return F.relu(F.linear(v, self.fc1_weight.flatten(0, 1), self.fc1_bias.flatten()))

    def forward(self, v: Tensor, noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Fuse ``v [B,d]``; ``noise`` (standard normal ``[B,K]``) fixes the training noise."""
        gates, log_gates, load = self._gate(v, noise)
        hid = self._hidden(v)
        if self.faithful:
            e = v + hid @ self.fc2_weight[0] + self.fc2_bias[0]  # shared expert, residual inside
            out = torch.logsumexp(log_gates.unsqueeze(2) + e.unsqueeze(1), dim=1)
        else:
            # sum_k G_k (relu_k W2_k + b2_k) = [G_1 relu_1, ..., G_K relu_K] @ [W2_1; ...; W2_K] + G b2
            g = gates.to(hid.dtype)
            hid = (hid.unflatten(1, (self.num_experts, self.hidden)) * g.unsqueeze(2)).flatten(1)
            delta = hid @ self.fc2_weight.flatten(0, 1) + g @ self.fc2_bias.to(hid.dtype)
            out = v + (delta if self.gain is None else self.gain.to(delta.dtype) * delta)
        return out, gates, self._balance(gates, load)
