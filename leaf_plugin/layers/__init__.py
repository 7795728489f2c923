"""LEAF network layers: noisy top-k expert gating, the backbone wrapper and LEAF's options."""
from .gating import ExpertGating
from .net import LeafNet
from .options import LeafConfig, LeafLoss

__all__ = ["ExpertGating", "LeafConfig", "LeafLoss", "LeafNet"]
