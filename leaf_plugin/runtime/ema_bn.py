"""Which BatchNorm statistics the evaluated EMA model uses (``--ema_bn``).

semilearn's EMA averages parameters only, so its EMA model runs with the live
model's BN running statistics, which belong to other weights.  ``live`` keeps
that; ``ema`` averages the BN buffers with the same decay as the weights (as
timm's model EMA does); ``recompute`` re-estimates the EMA model's statistics
before each evaluation on ``--ema_bn_batches`` training batches fed as training
feeds them (labeled, weak and strong views together), with the random state
forked so that training itself is the same under every mode.
"""
from __future__ import annotations

from typing import Dict, Iterator, List

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from ..checkpoint import rng_state, set_rng_state
from .device import unwrap

def bn_layers(model: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    return [m for m in unwrap(model).modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def bn_statistics(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The running means and variances of ``model``'s BatchNorm layers, by buffer name."""
    return {name: buf for name, buf in unwrap(model).named_buffers()
            if name.endswith(("running_mean", "running_var"))}


class BufferEMA:
    """An exponential average of a model's BN running statistics, next to semilearn's ``EMA``
    of its parameters; the EMA model holds the average, so a checkpoint keeps it."""

    def __init__(self, ema_model: nn.Module):
        self.shadow = {k: v.detach().clone() for k, v in bn_statistics(ema_model).items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for name, live in bn_statistics(model).items():
            self.shadow[name].mul_(decay).add_(live.detach(), alpha=1.0 - decay)

    @torch.no_grad()
    def copy_to(self, ema_model: nn.Module) -> None:
        for name, buf in bn_statistics(ema_model).items():
            buf.copy_(self.shadow[name])


def _forever(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def _stat_loaders(algorithm, seed: int) -> Iterator:
    """Batches of the labeled and unlabeled training sets, drawn with their own generator."""
    args = algorithm.args
    loaders = []
    for key, batch in (("train_lb", args.batch_size), ("train_ulb", args.batch_size * args.uratio)):
        dset = algorithm.dataset_dict.get(key)
        if dset is None:
            continue
        gen = torch.Generator().manual_seed(seed)
        loaders.append(_forever(DataLoader(dset, batch_size=batch, sampler=RandomSampler(dset, generator=gen),
                                           num_workers=0, drop_last=len(dset) >= batch)))
    return zip(*loaders)


@torch.no_grad()
def recompute_bn_statistics(algorithm, model: nn.Module, num_batches: int) -> None:
    """Re-estimate ``model``'s BN running statistics as a cumulative average over
    ``num_batches`` training batches, each forwarded as one batch of all its image views."""
    layers = bn_layers(model)
    if not layers or num_batches <= 0:
        return
    steps_done = algorithm.it + 1 if getattr(algorithm, "_in_step", False) else algorithm.it
    saved_rng = rng_state()
    devices = [algorithm.device] if algorithm.device.type == "cuda" else []
    was_training = model.training
    momenta = [m.momentum for m in layers]
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(algorithm.args.seed) * 1_000_003 + int(steps_done))
            for m in layers:
                m.reset_running_stats()
                m.momentum = None  # cumulative average
            model.train()
            for _, batches in zip(range(num_batches), _stat_loaders(algorithm, int(steps_done))):
                merged = {}
                for part in batches:
                    merged.update(part)
                inputs = algorithm.process_batch(**merged)
                views = [v for k, v in inputs.items() if k.startswith("x_") and torch.is_tensor(v) and v.dim() == 4]
                if views:
                    model(torch.cat(views))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
        set_rng_state(saved_rng)
