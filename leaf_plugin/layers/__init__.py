"""LEAF network layers: noisy top-k expert gating and the backbone wrapper."""
from .gating import ExpertGating
from .net import LeafConfig, LeafNet

__all__ = ["ExpertGating", "LeafConfig", "LeafNet"]
