"""Training loaders that a resumed run can start part-way through an epoch."""
from __future__ import annotations

import torch
from semilearn.core.utils import get_data_loader
from semilearn.datasets import DistributedSampler


class ResumableSampler(DistributedSampler):
    """semilearn's ``RandomSampler`` (its ``DistributedSampler``) that can start its
    next pass part-way through, so a resumed run sees exactly the batches an
    uninterrupted one would, without loading the skipped ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip = 0

    def start_at(self, position: int) -> None:
        self.skip = max(0, int(position))

    def __iter__(self):
        indices = list(super().__iter__())[self.skip:]
        self.skip = 0
        return iter(indices)


def resumable_train_loaders(algorithm, loaders: dict) -> dict:
    """``loaders`` with the labeled and unlabeled training loaders drawing from a
    :class:`ResumableSampler` (semilearn's ``RandomSampler`` only)."""
    args = algorithm.args
    if args.train_sampler != "RandomSampler":
        return loaders
    world = torch.distributed.get_world_size() if algorithm.distributed else 1
    rank = torch.distributed.get_rank() if algorithm.distributed else 0
    for key, batch, workers in (("train_lb", args.batch_size, args.num_workers),
                                ("train_ulb", args.batch_size * args.uratio, 2 * args.num_workers)):
        dset = algorithm.dataset_dict[key]
        if dset is None or key not in loaders:
            continue
        sampler = ResumableSampler(dset, num_replicas=world, rank=rank,
                                   num_samples=algorithm.num_iter_per_epoch * batch * world)
        loaders[key] = get_data_loader(args, dset, batch, data_sampler=sampler,
                                       num_workers=workers, distributed=algorithm.distributed)
    return loaders


def start_epoch_at(loader_dict: dict, steps_done: int) -> None:
    """Make the training loaders' next pass skip the first ``steps_done`` batches."""
    for key in ("train_lb", "train_ulb"):
        loader = loader_dict.get(key)
        if loader is not None and isinstance(loader.sampler, ResumableSampler):
            loader.sampler.start_at(steps_done * loader.batch_size)
