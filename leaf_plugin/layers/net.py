"""LEAF network hook: semantic and instance expert levels around any semilearn backbone.

```
x -> backbone (only_feat) -> h [B,d] -> semantic gating -> f -> z = normalize(f)
  -> instance gating (on z, "feat") -> feature_scale * g -> backbone classifier -> logits
                                              [-> instance gating on logits, "logits"]
```
With ``normalize=False`` the instance level gates ``f`` and its output reaches the classifier unscaled.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gating import ExpertGating
from .options import LeafConfig

__all__ = ["LeafNet", "backbone_feature_dim"]

def _in_features(module: nn.Module) -> Optional[int]:
    if isinstance(module, nn.Linear):
        return module.in_features
    for m in module.modules():  # e.g. nn.Sequential heads: the first Linear's input
        if isinstance(m, nn.Linear):
            return m.in_features
    return None


def backbone_feature_dim(backbone: nn.Module) -> int:
    """Pooled-feature size: ``num_features``, else the classifier / fc / head input size."""
    dim = getattr(backbone, "num_features", None)
    if isinstance(dim, int) and dim > 0:
        return dim
    for name in ("classifier", "fc", "head"):
        head = getattr(backbone, name, None)
        if isinstance(head, nn.Module) and (dim := _in_features(head)) is not None:
            return dim
    raise TypeError(
        f"leaf: cannot tell the feature size of {type(backbone).__name__} "
        "(no num_features and no Linear classifier / fc / head)"
    )


class LeafNet(nn.Module):
    """Wrap a semilearn backbone with LEAF's semantic and instance expert levels.

    ``forward(x)`` returns ``{'logits', 'feat', 'leaf_z', 'leaf_balance', 'leaf_gates'}``;
    ``'feat'`` is what entered the classifier. ``only_feat`` returns that feature;
    ``only_fc`` maps such a feature to logits. Disabled levels are not built.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, config: LeafConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        self.config = config
        self.num_features = backbone_feature_dim(backbone)

        def level(dim: int) -> ExpertGating:
            return ExpertGating(
                dim,
                num_experts=config.num_experts,
                top_k=config.top_k,
                noisy=config.noisy_gating,
                balance_coef=config.balance_coef,
                faithful=config.faithful,
                zero_init=config.expert_init == "zero",
                rezero=config.expert_init == "rezero",
            )

        self.semantic = level(self.num_features) if config.semantic else None
        self.instance: Optional[ExpertGating] = None
        if config.instance:
            dim = self.num_features if config.instance_on == "feat" else num_classes
            self.instance = level(dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(config.feature_scale))) if config.learn_scale else None

    @property
    def feature_scale(self) -> Tensor | float:
        """The factor of the unit-norm feature: fixed, or ``exp(log_scale)`` when learned."""
        return self.config.feature_scale if self.log_scale is None else self.log_scale.exp()

    @property
    def _instance_on_logits(self) -> bool:
        return self.instance is not None and self.config.instance_on == "logits"

    def _classify(self, feat: Tensor) -> tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        logits = self.backbone(feat, only_fc=True)
        if self._instance_on_logits:
            logits, gates, balance = self.instance(logits)
            return logits, gates, balance
        return logits, None, None

    def forward(self, x: Tensor, only_fc: bool = False, only_feat: bool = False, **kwargs: Any) -> Any:
        if only_fc:
            return self._classify(x)[0]

        h = self.backbone(x, only_feat=True, **kwargs)
        balance = h.new_zeros((), dtype=torch.float32)
        gates: Dict[str, Optional[Tensor]] = {"semantic": None, "instance": None}
        f = h
        if self.semantic is not None:
            f, gates["semantic"], b = self.semantic(h)
            balance = balance + b
        z = F.normalize(f, dim=1)
        g = z if self.config.normalize else f
        if self.instance is not None and not self._instance_on_logits:
            g, gates["instance"], b = self.instance(g)
            balance = balance + b
        feat = self.feature_scale * g if self.config.normalize else g
        if only_feat:
            return feat

        logits, inst_gates, b = self._classify(feat)
        if inst_gates is not None:
            gates["instance"] = inst_gates
            balance = balance + b
        return {
            "logits": logits,
            "feat": feat,
            "leaf_z": z,
            "leaf_balance": balance,
            "leaf_gates": gates,
        }

    def leaf_parameter_names(self) -> List[str]:
        """Names of the parameters LEAF adds (outside ``backbone.``)."""
        return [n for n, _ in self.named_parameters() if not n.startswith("backbone.")]

    def group_matcher(self, coarse: bool = False, prefix: str = "") -> Dict[str, Any]:
        """Backbone groups (prefixed ``backbone.``), then one group for the LEAF levels."""
        matcher: Dict[str, Any] = {}
        if hasattr(self.backbone, "group_matcher"):
            matcher.update(self.backbone.group_matcher(coarse, prefix=f"{prefix}backbone."))
        matcher["leaf"] = r"^{}(?:semantic|instance)\.".format(prefix)
        return matcher

    def no_weight_decay(self) -> List[str]:
        """Backbone's no-decay names (prefixed ``backbone.``) plus LEAF's biases, gains and scale."""
        names: List[str] = []
        if hasattr(self.backbone, "no_weight_decay"):
            names = [f"backbone.{n}" for n in self.backbone.no_weight_decay()]
        names += [n for n in self.leaf_parameter_names() if n.endswith(("_bias", "gain", "log_scale"))]
        return names
