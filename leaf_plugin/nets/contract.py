"""semilearn's net contract: the base class the plug-in's nets share, and the decorator that registers one.

A semilearn net maps ``x`` to ``{'logits', 'feat'}``, returns the pooled feature with
``only_feat=True``, maps a feature to logits with ``only_fc=True``, and tells the optimizer
its parameter groups (``group_matcher``) and what takes no weight decay.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn as nn

Builder = Callable[..., nn.Module]
NETS: Dict[str, Builder] = {}


def register_net(name: str) -> Callable[[Builder], Builder]:
    """Decorator (as timm's ``@register_model``): make ``build(num_classes, pretrained=False,
    pretrained_path=None)`` semilearn's net ``name``, which ``get_net_builder`` then finds."""
    import semilearn.nets

    def add(build: Builder) -> Builder:
        NETS[name] = build
        setattr(semilearn.nets, name, build)
        return build

    return add


class SemilearnNet(nn.Module):
    """``forward(x, only_fc, only_feat)`` over the subclass's ``extract(x) -> [B, d]`` and its
    ``classifier``; ``group_matcher`` from the class's ``STEM`` and ``BLOCKS`` patterns
    (``BLOCKS_FINE`` when not coarse), formatted with the parameter-name ``prefix``."""

    STEM = BLOCKS = BLOCKS_FINE = ""
    classifier: nn.Module

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, only_fc: bool = False, only_feat: bool = False, **kwargs):
        if only_fc:
            return self.classifier(x)
        feat = self.extract(x)
        if only_feat:
            return feat
        return {"logits": self.classifier(feat), "feat": feat}

    def group_matcher(self, coarse: bool = False, prefix: str = "") -> dict:
        return dict(stem=self.STEM.format(prefix=prefix),
                    blocks=(self.BLOCKS if coarse else self.BLOCKS_FINE or self.BLOCKS).format(prefix=prefix))

    def no_weight_decay(self):
        return []
