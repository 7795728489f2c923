"""Any timm model as a semilearn backbone (``--net timm/NAME``).

``timm.create_model(NAME, pretrained=False, num_classes=0)`` is the feature
extractor and a ``classifier`` Linear the head, under semilearn's contract
(``forward(x, only_fc, only_feat)`` -> ``{'logits', 'feat'}``, ``num_features``).
Nothing is ever downloaded: weights come only from a local ``--pretrain_path``
(a timm/torchvision state dict of the same model loads as it is; its own head
is dropped and the classifier re-initialised for the run's classes).
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from ..errors import UserError
from .contract import SemilearnNet


def _prefixed(pattern, prefix: str):
    """A timm group-matcher regex (or list of (regex, ...) tuples) for ``prefix + key``."""
    if isinstance(pattern, str):
        body = pattern[1:] if pattern.startswith("^") else pattern
        return "^" + re.escape(prefix) + "(?:" + body + ")"
    if isinstance(pattern, (list, tuple)):
        return [(_prefixed(p[0], prefix), *p[1:]) if isinstance(p, tuple) else _prefixed(p, prefix)
                for p in pattern]
    return pattern


class TimmNet(SemilearnNet):
    """``model`` (a timm feature extractor) + ``classifier``."""

    def __init__(self, name: str, num_classes: int, img_size: int = None):
        super().__init__()
        import timm

        if not timm.is_model(name):
            close = timm.list_models(f"*{name}*")[:8]
            raise UserError(f"unknown timm model '{name}'"
                            + (f"; close matches: {', '.join(close)}" if close else
                               "; expected a name from timm.list_models()"))
        kwargs = dict(pretrained=False, num_classes=0)
        try:  # models with a fixed input size (ViTs) take the run's img_size
            self.model = timm.create_model(name, img_size=img_size, **kwargs) if img_size else \
                timm.create_model(name, **kwargs)
        except TypeError:
            self.model = timm.create_model(name, **kwargs)
        self.timm_name = name
        self.num_features = int(self.model.num_features)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.model(x)
        return torch.flatten(feat, 1) if feat.dim() > 2 else feat  # a pooled output that keeps spatial dims

    def group_matcher(self, coarse: bool = False, prefix: str = ""):
        if hasattr(self.model, "group_matcher"):
            try:
                matcher = self.model.group_matcher(coarse)
                return {k: _prefixed(v, f"{prefix}model.") for k, v in matcher.items()}
            except Exception:  # pragma: no cover - a timm model without a usable matcher
                pass
        return dict(stem=r"^{}model\.(conv1|bn1|stem|patch_embed)".format(re.escape(prefix)),
                    blocks=r"^{}model\.(?:layer|stages|blocks)\.?(\d+)".format(re.escape(prefix)))

    def no_weight_decay(self):
        if hasattr(self.model, "no_weight_decay"):
            return {f"model.{n}" for n in self.model.no_weight_decay()}
        return []


def timm_builder(name: str, args):
    """A semilearn-style builder ``build(num_classes, pretrained=False, pretrained_path=None)``
    of :class:`TimmNet` for the timm model ``name``; checks the name now."""
    import timm

    if not timm.is_model(name):
        TimmNet(name, 1)  # raises the UserError with close matches
    img_size, strict = args.img_size, bool(args.pretrain_strict)

    def build(num_classes: int, pretrained: bool = False, pretrained_path: str = None, **kwargs) -> TimmNet:
        model = TimmNet(name, num_classes, img_size)
        if pretrained_path:
            from .pretrained import load_pretrained_backbone
            load_pretrained_backbone(model, pretrained_path, strict)
        return model

    build.__name__ = f"timm/{name}"
    return build
