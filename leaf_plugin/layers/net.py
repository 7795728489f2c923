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
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gating import ExpertGating

__all__ = ["LeafConfig", "LeafNet", "backbone_feature_dim"]

_PLACEMENTS = ("feat", "logits")
_EXPERT_INITS = ("uniform", "zero", "rezero")


@dataclass
class LeafConfig:
    """Options of the LEAF network hook.

    Attributes:
        num_experts: experts per level (K).
        top_k: experts kept per sample, in ``1..num_experts``.
        noisy_gating: Shazeer's learned gate noise in training.
        balance_coef: weight of each level's load-balancing term.
        semantic: build the semantic level (experts on the backbone feature).
        instance: build the instance level.
        instance_on: ``"feat"`` = on the normalised d-dim feature before the classifier (the
            released code's placement); ``"logits"`` = on the C-dim logits after the classifier
            (the paper figure's placement).
        feature_scale: the unit-norm feature is multiplied by this before the classifier. A
            unit-norm feature through a freshly initialised linear head gives logits of size
            ~1/sqrt(d), i.e. near-uniform softmax and tiny gradients; a fixed scale (as in
            cosine / NormFace classifiers) restores a usable logit range.
        learn_scale: learn that scale (as a log, ``log_scale``), starting at ``feature_scale``.
        normalize: ``True``: the classifier sees the unit-norm feature times the scale (a
            cosine-like head); ``False``: it sees the gated feature at the backbone's own norm
            (the host's head; the instance level then gates ``f``, and ``leaf_z`` stays unit-norm
            for the two-view term); there is no scale then, so ``learn_scale`` is turned off.
        expert_init: ``"uniform"``: the experts' layers start like ``nn.Linear``; ``"zero"``:
            their second layers start at zero, so each level is the identity at the start and
            a pretrained backbone's feature reaches the classifier unchanged; ``"rezero"``:
            uniform experts behind a learned scalar gain per level that starts at 0 (ReZero).
        faithful: reproduce the released code (shared expert, top-1 gate, log-sum-exp fusion,
            no balance term, unscaled feature). Forces ``top_k = 1``, ``feature_scale = 1.0``,
            ``learn_scale = False``, ``normalize = True`` and ``expert_init = "uniform"``.
    """

    num_experts: int = 8
    top_k: int = 2
    noisy_gating: bool = True
    balance_coef: float = 0.01
    semantic: bool = True
    instance: bool = True
    instance_on: str = "feat"
    feature_scale: float = 16.0
    learn_scale: bool = False
    normalize: bool = True
    expert_init: str = "uniform"
    faithful: bool = False

    @classmethod
    def recorded_fields(cls, recorded: Dict[str, Any]) -> Dict[str, Any]:
        """Every field of a configuration a checkpoint recorded (``asdict`` of an older version):
        a field it predates gets its default, which is what runs did before the field existed
        (e.g. a fixed head scale before ``learn_scale``); a field since removed is dropped."""
        return {k: recorded.get(k, default) for k, default in asdict(cls()).items()}

    def __post_init__(self) -> None:
        # like torch / torchvision: TypeError for a value of the wrong type, ValueError for a
        # value out of range; messages are one line and start with "leaf: <field>"
        for name in ("num_experts", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"leaf: {name} must be an integer, got {value!r}")
        for name in ("noisy_gating", "semantic", "instance", "learn_scale", "normalize", "faithful"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"leaf: {name} must be true or false, got {getattr(self, name)!r}")
        for name in ("instance_on", "expert_init"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"leaf: {name} must be a string, got {getattr(self, name)!r}")
        for name in ("balance_coef", "feature_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"leaf: {name} must be a finite number, got {value!r}")
        if self.num_experts < 1:
            raise ValueError(f"leaf: num_experts must be >= 1, got {self.num_experts}")
        if self.faithful:
            self.top_k = 1
            self.feature_scale = 1.0
            self.learn_scale = False
            self.normalize = True
            self.expert_init = "uniform"
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(
                f"leaf: top_k must be in 1..num_experts ({self.num_experts}), got {self.top_k}"
            )
        if self.instance_on not in _PLACEMENTS:
            raise ValueError(
                f"leaf: instance_on must be one of {', '.join(_PLACEMENTS)}, got {self.instance_on!r}"
            )
        if self.expert_init not in _EXPERT_INITS:
            raise ValueError(
                f"leaf: expert_init must be one of {', '.join(_EXPERT_INITS)}, got {self.expert_init!r}"
            )
        for name in ("balance_coef", "feature_scale"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"leaf: {name} must be a finite number, got {getattr(self, name)!r}")
        if self.balance_coef < 0:
            raise ValueError(f"leaf: balance_coef must be >= 0, got {self.balance_coef}")
        if self.feature_scale <= 0:
            raise ValueError(f"leaf: feature_scale must be > 0, got {self.feature_scale}")
        if not self.normalize:  # an unnormalised feature has no scale to learn
            self.learn_scale = False


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
