"""Routing the unlabeled views through one batched forward.

A wrapped host keeps its own ``train_step``: it calls ``self.model`` on its
inputs (``x_lb``, ``x_ulb_w``, ``x_ulb_s``, concatenated or not).  During that
step :class:`ViewRouter` stands in for the model: it recognises the host's
inputs by identity or content, appends the views LEAF adds (the second weak
view, and the strong view for hosts that do not use one) to the same forward,
records what LEAF's losses need, and hands the host, as the weak view's
logits, ``log`` of the average of the two weak views' probabilities, so every
host's own pseudo-labelling and masking hooks see the averaged prediction
(``host_view="own"``: the host's own weak view, the average left to LEAF's terms).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from semilearn.datasets.cv_datasets.datasetbase import BasicDataset

from ..layers.options import HOST_VIEWS
from .leaf_args import LeafWrapError


@dataclass
class UnlabeledViews:
    """The inputs of one step that the router recognises, by name."""

    parts: Dict[str, torch.Tensor]   # 'lb', 'w', 's' as the host receives them
    w2: torch.Tensor                 # the second weak view (LEAF's own)
    s_for_leaf: bool                 # the host does not use the strong view: LEAF forwards it itself


@dataclass
class ViewRecord:
    """Outputs of the views, gathered over the step's forward calls."""

    logits: Dict[str, torch.Tensor] = field(default_factory=dict)   # 'w1', 'w2', 's'
    z: Dict[str, torch.Tensor] = field(default_factory=dict)        # normalised features
    balance: List[torch.Tensor] = field(default_factory=list)
    gates: Dict[str, List[torch.Tensor]] = field(default_factory=dict)


def _fingerprints(tensors: List[torch.Tensor], size: int = 256) -> List[torch.Tensor]:
    """Per row, ``size`` evenly spaced elements of each tensor, all brought to the CPU in one
    transfer (one host-device sync, not one per comparison)."""
    width = tensors[0][0].numel()
    idx = torch.linspace(0, width - 1, min(size, width), device=tensors[0].device).long()
    rows = [t.reshape(t.shape[0], -1).index_select(1, idx) for t in tensors]
    flat = torch.cat(rows).cpu()
    return list(flat.split([t.shape[0] for t in tensors]))


def _segments(x: torch.Tensor, parts: Dict[str, torch.Tensor]) -> Optional[List[tuple]]:
    """``x`` as consecutive known parts [(name, start, stop)], or None.

    A piece of ``x`` is a part when it is the same memory, or when their rows agree on a
    fingerprint of evenly spaced elements (host-side, after one transfer): the host's ``torch.cat``
    of its inputs copies them, and comparing whole batches every step (``torch.equal``, a sync on
    CUDA per comparison) cost more than the check is worth."""
    same = {name: part for name, part in parts.items() if part.shape[1:] == x.shape[1:] and part.shape[0] > 0}
    if not same or x.shape[0] == 0:
        return None
    prints = None
    out, start = [], 0
    while start < x.shape[0]:
        for name, part in same.items():
            stop = start + part.shape[0]
            if stop > x.shape[0]:
                continue
            piece = x[start:stop]
            if piece.data_ptr() != part.data_ptr() or piece.stride() != part.stride():
                if prints is None:
                    names = list(same)
                    fp = _fingerprints([x] + [same[n] for n in names])
                    prints = (fp[0], dict(zip(names, fp[1:])))
                if not torch.equal(prints[0][start:stop], prints[1][name]):
                    continue
            out.append((name, start, stop))
            start = stop
            break
        else:
            return None
    return out


def mean_probs(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The mean of the two weak views' softmax probabilities, in float32."""
    return (torch.softmax(w1.float(), -1) + torch.softmax(w2.float(), -1)) / 2


def averaged_logits(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax is :func:`mean_probs`."""
    return torch.log(mean_probs(w1, w2).clamp_min(1e-12)).to(w1.dtype)




class ViewRouter:
    """Stands in for ``algorithm.model`` during a wrapped host's ``train_step``."""

    def __init__(self, model: nn.Module, views: UnlabeledViews, view2_grad: bool = True, host_view: str = "mean"):
        if host_view not in HOST_VIEWS:
            raise ValueError(f"host_view must be one of {', '.join(HOST_VIEWS)}, got {host_view!r}")
        self.model = model
        self.views = views
        self.view2_grad = view2_grad
        self.host_view = host_view
        self.record = ViewRecord()

    def __getattr__(self, name):  # modules(), train(), named_modules() ... of the real model
        return getattr(self.model, name)

    def _note(self, out: dict, sl: slice, name: str) -> None:
        self.record.logits[name] = out["logits"][sl]
        self.record.z[name] = out["leaf_z"][sl]

    def _extras(self, out: dict) -> None:
        self.record.balance.append(out["leaf_balance"])
        for level, g in out["leaf_gates"].items():
            if g is not None:
                self.record.gates.setdefault(level, []).append(g.detach())

    def __call__(self, x, *args, **kwargs):
        if kwargs.get("only_fc") or kwargs.get("only_feat") or not isinstance(x, torch.Tensor):
            return self.model(x, *args, **kwargs)
        segments = _segments(x, self.views.parts)
        if segments is None or not any(name in ("w", "s") for name, _, _ in segments):
            return self.model(x, *args, **kwargs)
        n = x.shape[0]
        has_w = any(name == "w" for name, _, _ in segments)
        extras = []
        if has_w:
            if self.view2_grad:
                extras.append(("w2", self.views.w2))
            if self.views.s_for_leaf:
                extras.append(("s", self.views.parts["s"]))
        if extras and torch.is_grad_enabled():
            batch = torch.cat([x] + [t for _, t in extras])
            out = self.model(batch, *args, **kwargs)
        else:
            out = self.model(x, *args, **kwargs)
            if extras:
                with torch.enable_grad():
                    more = self.model(torch.cat([t for _, t in extras]), *args, **kwargs)
                out = {k: (torch.cat([out[k], more[k]]) if k in ("logits", "feat", "leaf_z") else out[k])
                       for k in out}
                out["leaf_balance"] = (out["leaf_balance"] + more["leaf_balance"]) / 2
        start = n
        for name, t in extras:
            self._note(out, slice(start, start + t.shape[0]), name)
            start += t.shape[0]
        if has_w and not self.view2_grad:
            with torch.no_grad():
                second = self.model(self.views.w2, *args, **kwargs)
            self.record.logits["w2"] = second["logits"]
            self.record.z["w2"] = second["leaf_z"]
        self._extras(out)
        logits = out["logits"][:n]
        pieces = []
        for name, a, b in segments:
            piece = logits[a:b]
            if name == "w":
                self._note(out, slice(a, b), "w1")
                if self.host_view == "mean":
                    piece = averaged_logits(piece, self.record.logits["w2"])
            elif name == "s":
                self._note(out, slice(a, b), "s")
            pieces.append(piece)
        return {"logits": torch.cat(pieces) if len(pieces) > 1 else pieces[0], "feat": out["feat"][:n],
                "leaf_z": out["leaf_z"][:n]}


def add_second_weak_view(dataset) -> None:
    """Make ``dataset`` (any semilearn ``BasicDataset``, in place, not copied) also
    return ``x_ulb_w_2``: its own weak transform applied once more to the same image."""
    if not isinstance(dataset, BasicDataset):
        raise LeafWrapError(f"LEAF needs an image dataset (a semilearn BasicDataset) for its second weak view; "
                            f"got {type(dataset).__name__}")
    if getattr(dataset, "_leaf_two_weak_views", False):
        return
    base = type(dataset)

    class TwoWeakViews(base):
        _leaf_two_weak_views = True

        def __sample__(self, idx):
            img, target = super().__sample__(idx)
            self._leaf_last_image = img
            return img, target

        def __getitem__(self, idx):
            item = super().__getitem__(idx)
            if isinstance(item, dict) and "x_ulb_w" in item:
                img = self._leaf_last_image
                if isinstance(img, np.ndarray):
                    img = Image.fromarray(img)
                item["x_ulb_w_2"] = self.transform(img)
            return item

    TwoWeakViews.__name__ = TwoWeakViews.__qualname__ = base.__name__ + "WithTwoWeakViews"
    dataset.__class__ = TwoWeakViews
