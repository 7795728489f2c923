"""LEAF's options, each field a ``--leaf_<field>`` flag: the network hook's and the losses'.

:class:`LeafConfig` configures the network hook (:class:`~leaf_plugin.layers.LeafNet`);
:class:`LeafLoss` the category level, the two-view term and the weights of LEAF's terms in
the loss.  Both are frozen and built once per algorithm; their defaults, choices and help
are the flags' (``leaf_plugin.algorithms.leaf_args`` builds the flag table from them).  A bad
value is a ``TypeError`` or ``ValueError`` whose one-line message starts ``leaf: <field>``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict

from ..flags import flag

__all__ = ["LeafConfig", "LeafLoss", "INSTANCE_PLACEMENTS", "EXPERT_INITS", "AMB_ON", "HOST_VIEWS"]

INSTANCE_PLACEMENTS = ("feat", "logits")
EXPERT_INITS = ("uniform", "zero", "rezero")
AMB_ON = ("rejected", "all", "unconfident")
HOST_VIEWS = ("mean", "own")


def check_types(options) -> None:
    """TypeError naming the first field whose value is not of its default's type."""
    for f in fields(options):
        value, kind = getattr(options, f.name), type(f.default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and not math.isfinite(value):
                raise ValueError(f"leaf: {f.name} must be a finite number, got {value!r}")
        else:
            ok = isinstance(value, kind)
        if not ok:
            what = {bool: "true or false", int: "an integer", float: "a finite number"}.get(kind, "a string")
            raise TypeError(f"leaf: {f.name} must be {what}, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ValueError(f"leaf: {f.name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class LeafConfig:
    """Options of the LEAF network hook.

    ``feature_scale``: a unit-norm feature through a freshly initialised linear head gives
    logits of size ~1/sqrt(d), a near-uniform softmax and tiny gradients; a scale (as in
    cosine / NormFace classifiers) restores a usable logit range.  ``faithful`` reproduces
    the released code (shared expert, top-1 gate, log-sum-exp fusion, no balance term,
    unscaled feature): it forces ``top_k = 1``, ``feature_scale = 1.0``, ``learn_scale = False``,
    ``normalize = True`` and ``expert_init = "uniform"``.  ``normalize = False`` has no scale
    to learn, so it turns ``learn_scale`` off.
    """

    num_experts: int = flag(8, "experts per level")
    top_k: int = flag(2, "experts each sample is routed to")
    noisy_gating: bool = flag(True, "noisy top-k gating (noise in training only)")
    balance_coef: float = flag(0.01, "coefficient of cv^2(importance) + cv^2(load)")
    semantic: bool = flag(True, "semantic level (expert gating after pooling)")
    instance: bool = flag(True, "instance level (expert gating after normalisation)")
    instance_on: str = flag("feat", "instance level on the normalised feature before the classifier (feat, the "
                                    "released code's placement) or on the logits (logits, the paper figure's)",
                            INSTANCE_PLACEMENTS)
    feature_scale: float = flag(16.0, "scale of the normalised feature before the classifier")
    learn_scale: bool = flag(False, "learn that scale (NormFace), starting at --leaf_feature_scale")
    normalize: bool = flag(True, "classify the unit-norm feature times the scale (false: the feature at the "
                                 "backbone's own norm, no scale, so no --leaf_learn_scale)")
    expert_init: str = flag("uniform", "experts: uniform (nn.Linear init) | zero (second layers zero: each level "
                                       "starts as the identity) | rezero (uniform experts behind a learned gain "
                                       "that starts at 0)", EXPERT_INITS)
    faithful: bool = flag(False, "the released code's modules and loss (reproduction only)")

    @classmethod
    def recorded_fields(cls, recorded: Dict[str, Any]) -> Dict[str, Any]:
        """Every field of a configuration a checkpoint recorded (``asdict`` of an older version):
        a field it predates gets its default, which is what runs did before the field existed
        (e.g. a fixed head scale before ``learn_scale``); a field since removed is dropped."""
        return {k: recorded.get(k, default) for k, default in asdict(cls()).items()}

    def __post_init__(self) -> None:
        check_types(self)
        if self.num_experts < 1:
            raise ValueError(f"leaf: num_experts must be >= 1, got {self.num_experts}")
        forced = dict(top_k=1, feature_scale=1.0, learn_scale=False, normalize=True, expert_init="uniform") \
            if self.faithful else {}
        if not forced.get("normalize", self.normalize):  # an unnormalised feature has no scale to learn
            forced["learn_scale"] = False
        for name, value in forced.items():
            object.__setattr__(self, name, value)
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(f"leaf: top_k must be in 1..num_experts ({self.num_experts}), got {self.top_k}")
        if self.balance_coef < 0:
            raise ValueError(f"leaf: balance_coef must be >= 0, got {self.balance_coef}")
        if self.feature_scale <= 0:
            raise ValueError(f"leaf: feature_scale must be > 0, got {self.feature_scale}")


@dataclass(frozen=True)
class LeafLoss:
    """Options of LEAF's loss terms: the category level (ambiguous pseudo-labels), the two-view
    term, the gates' balance term, and where they apply."""

    lambda_amb: float = flag(1.0, "weight of the ambiguous pseudo-label loss (category level)")
    lambda_c: float = flag(0.1, "weight of the two-view consistency (NT-Xent) term")
    lambda_b: float = flag(1.0, "weight of the gates' balance term (its size is --leaf_balance_coef)")
    amb_on: str = flag("rejected", "where the ambiguous loss and the two-view term apply: rejected (by the host's "
                                   "mask) | all | unconfident (averaged-view confidence below --leaf_confidence)",
                       AMB_ON)
    confidence: float = flag(0.95, "threshold of --leaf_amb_on unconfident")
    host_view: str = flag("mean", "what the host pseudo-labels and masks with: mean (of the two weak views) | own "
                                  "(its weak view)", HOST_VIEWS)
    category: bool = flag(True, "category level (ambiguous pseudo-labels)")
    tau: float = flag(0.9, "cumulative probability that closes the positive set")
    max_pos: int = flag(3, "largest positive set")
    min_pos: int = flag(1, "smallest positive set (1: the method's rule unchanged)")
    weight_lambda: float = flag(50.0, "lambda of the concave per-sample weight")
    temperature: float = flag(0.07, "NT-Xent temperature of the two-view term")
    view2_grad: bool = flag(True, "train through the second weak view (false: no-grad forward)")

    def __post_init__(self) -> None:
        check_types(self)
        if not 1 <= self.min_pos <= self.max_pos:
            raise ValueError(f"leaf: min_pos must be in 1..max_pos ({self.max_pos}), got {self.min_pos}")
        if not 0.0 < self.confidence <= 1.0:
            raise ValueError(f"leaf: confidence must be in (0, 1], got {self.confidence}")
