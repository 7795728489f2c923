"""LEAF losses: ambiguous (set-valued) pseudo-label loss and two-view NT-Xent.

All functions are vectorised over the batch and compute in float32 internally, so half
precision autocast inputs and very large logits give finite values.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "positive_set_size",
    "ambiguous_weight",
    "ambiguous_loss",
    "faithful_ambiguous_loss",
    "nt_xent",
]


def _no_autocast(x: Tensor) -> torch.autocast:
    """Context that switches autocast off for ``x``'s device (float32 math inside)."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _sorted_desc(q: Tensor) -> Tensor:
    return q.detach().float().sort(dim=1, descending=True).values


def positive_set_size(q: Tensor, tau: float = 0.9, max_pos: int = 3, min_pos: int = 1) -> Tensor:
    """Number ``n`` of positive classes per sample (``LongTensor[B]``).

    With ``q`` sorted descending and cumulative sums ``S_j = q(1) + ... + q(j)``:
    ``n = 1`` if ``S_2 >= tau``, else ``n = 2`` if ``S_3 >= tau``, ..., else ``n = max_pos``.
    I.e. ``n`` is the smallest ``j`` in ``1..max_pos-1`` whose top ``j + 1`` classes reach
    ``tau`` (the ``(n+1)``-th class is the first one *outside* the set, and the concave weight
    measures how far it lies below the set), else ``max_pos``; equivalently
    ``n = 1 + #{j in 2..max_pos : S_j < tau}``. This is the method page's rule verbatim and
    gives its worked examples (C = 7): (.95,.02,.01,.01) -> 1, (.60,.25,.08,.04) -> 2,
    (.50,.20,.15,.10) -> 3, uniform -> 3. ``n`` never exceeds the number of classes C.
    ``min_pos`` (not in the method; 1 leaves the rule as it is) raises every set to at least
    that many classes.
    """
    if max_pos < 1:
        raise ValueError(f"max_pos must be >= 1, got {max_pos}")
    if not 1 <= min_pos <= max_pos:
        raise ValueError(f"min_pos must be in 1..max_pos ({max_pos}), got {min_pos}")
    cum = _sorted_desc(q).cumsum(dim=1)
    below = cum[:, 1:max_pos] < tau  # S_2 .. S_max_pos (fewer when C is small)
    return (1 + below.sum(dim=1)).clamp(min=min_pos).clamp(max=q.shape[1]).long()


def ambiguous_weight(q: Tensor, n: Tensor, lam: float = 50.0) -> Tensor:
    """Concave per-sample weight in ``[0, 1]`` (0 for a uniform ``q``).

    ``mu = S_{n+1} / (n+1)``, ``w = min(1, log(1 + lam (mu - q(n+1))) / log(1 + lam mu))``.
    When ``n = C`` (no class outside the set) the ``(n+1)``-th class is taken as the C-th.
    """
    qs = _sorted_desc(q)
    k = (n.to(qs.device).long() + 1).clamp(max=qs.shape[1])  # 1-based index of q(n+1)
    idx = (k - 1).unsqueeze(1)
    mu = qs.cumsum(dim=1).gather(1, idx).squeeze(1) / k.float()
    q_next = qs.gather(1, idx).squeeze(1)
    num = torch.log1p(lam * (mu - q_next).clamp_min(0.0))
    den = torch.log1p(lam * mu).clamp_min(1e-12)
    return torch.nan_to_num(num / den, nan=0.0).clamp(0.0, 1.0)


def positive_mask(q: Tensor, n: Tensor) -> Tensor:
    """``[B, C]`` mask of the top-``n`` classes of ``q`` per row."""
    order = q.detach().float().argsort(dim=1, descending=True)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(q.shape[1], device=q.device).expand_as(order)
    )
    return ranks < n.unsqueeze(1)


def _masked_logsumexp(x: Tensor, mask: Tensor) -> Tensor:
    """Row-wise logsumexp over ``mask``; rows with an empty mask give a finite junk value."""
    return torch.logsumexp(x.masked_fill(~mask, torch.finfo(x.dtype).min), dim=1)


def ambiguous_loss(
    logits_s: Tensor, q: Tensor, tau: float = 0.9, max_pos: int = 3, lam: float = 50.0, min_pos: int = 1
) -> Tuple[Tensor, Tensor, Tensor]:
    """Weighted pairwise positive-set loss on the strong view.

    Args:
        logits_s: strong-view logits ``[B, C]``.
        q: target distribution ``[B, C]`` (mean of the weak views' probabilities); detached.
        tau, max_pos, min_pos: the positive set (:func:`positive_set_size`); lam: the weight's.

    Returns:
        ``(w * l [B], n [B], w [B])`` with
        ``l = log(1 + sum_{m in N} sum_{p in P} exp(s_m - s_p))
           = softplus(logsumexp_P(-s) + logsumexp_N(s))``, 0 when ``N`` is empty.
    """
    with _no_autocast(logits_s):
        s = logits_s.float()
        q = q.detach().float()
        n = positive_set_size(q, tau, max_pos, min_pos)
        w = ambiguous_weight(q, n, lam)
        pos = positive_mask(q, n)
        has_neg = (~pos).any(dim=1)
        x = _masked_logsumexp(-s, pos) + _masked_logsumexp(s, ~pos)
        x = torch.where(has_neg, x, torch.zeros_like(x))
        loss = torch.where(has_neg, F.softplus(x), torch.zeros_like(x))
        return w * loss, n, w


def faithful_ambiguous_loss(
    logits_s: Tensor,
    q: Tensor,
    mask: Tensor,
    ce_loss: Tensor,
    tau: float = 0.9,
    max_pos: int = 3,
    lam: float = 50.0,
) -> Tensor:
    """Released-code variant, for reproduction only.

    Mean of the weighted loss over *all* samples, rescaled to the size of the hard-label CE
    with a detached ratio ``ce_loss / amb`` (0 when ``amb`` is 0), times the fraction of
    confident samples ``mask.float().mean()``.
    """
    per_sample, _, _ = ambiguous_loss(logits_s, q, tau, max_pos, lam)
    amb = per_sample.mean()
    amb_d = amb.detach()
    ce_d = ce_loss.detach().float()
    ratio = torch.where(amb_d > 0, ce_d / amb_d.clamp_min(torch.finfo(amb_d.dtype).tiny), torch.zeros_like(amb_d))
    return ratio * amb * mask.float().mean()


def nt_xent(
    z1: Tensor, z2: Tensor, temperature: float = 0.07, select: Optional[Tensor] = None
) -> Tensor:
    """SimCLR NT-Xent between the rows of ``z1`` and ``z2`` (``[B, D]`` each).

    Row ``i`` of ``z1`` and of ``z2`` are positives; each of the ``2N`` anchors has the other
    ``2N - 2`` rows as negatives. Rows are L2-normalised inside. ``select`` (``BoolTensor[B]``)
    restricts the loss to those rows; with fewer than 2 rows the result is an exact 0 that is
    still connected to the graph (zero gradient).
    """
    if select is not None:
        z1, z2 = z1[select], z2[select]
    num = z1.shape[0]
    if num < 2:
        return z1[:0].float().sum() + z2[:0].float().sum()
    with _no_autocast(z1):
        z = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)
        sim = (z @ z.t()) / temperature
        eye = torch.eye(2 * num, dtype=torch.bool, device=z.device)
        sim = sim.masked_fill(eye, float("-inf"))
        idx = torch.arange(num, device=z.device)
        target = torch.cat([idx + num, idx])
        return F.cross_entropy(sim, target)
